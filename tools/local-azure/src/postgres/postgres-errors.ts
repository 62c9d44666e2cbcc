import type { ErrorFields } from './wire-protocol.js';

/** The token audience of Azure Database for PostgreSQL (and MySQL) with Microsoft Entra authentication. */
export const ossrdbmsResource = 'https://ossrdbms-aad.database.windows.net';

/**
 * The errors the local PostgreSQL front end sends, with the texts Azure Database for PostgreSQL flexible
 * server and PostgreSQL itself use (see shared/notes/postgres-entra-and-arm.md). Azure's own token texts are
 * sent as SQLSTATE 28000 (invalid authorization specification); what else is refused at login gets
 * PostgreSQL's stock `password authentication failed` (28P01), as Azure does.
 */
export const postgresErrors = {
  /** A start-up without TLS (`require_secure_transport` is on in Azure): PostgreSQL's pg_hba text. */
  noEncryption: (host: string, user: string, database: string): ErrorFields => ({
    severity: 'FATAL',
    code: '28000',
    message: `no pg_hba.conf entry for host "${host}", user "${user}", database "${database}", no encryption`,
  }),
  passwordAuthenticationFailed: (user: string): ErrorFields => ({
    severity: 'FATAL',
    code: '28P01',
    message: `password authentication failed for user "${user}"`,
  }),
  emptyPassword: (): ErrorFields => ({ severity: 'FATAL', code: '28P01', message: 'empty password returned by client' }),
  tokenExpired: (): ErrorFields => ({ severity: 'FATAL', code: '28000', message: 'The access token has expired. Acquire a new token and try again.' }),
  tokenWrongAudience: (): ErrorFields => ({
    severity: 'FATAL',
    code: '28000',
    message: `The access token does not have a valid audience claim. Please acquire a new token for the resource "${ossrdbmsResource}".`,
  }),
  tokenWithoutOid: (): ErrorFields => ({ severity: 'FATAL', code: '28000', message: "The access token doesn't have a valid oid claim. Acquire a new token and try again" }),
  tokenInvalidFormat: (): ErrorFields => ({
    severity: 'FATAL',
    code: '28000',
    message: 'The access token has invalid format. Please ensure the token is passed exactly as returned by the authentication endpoint and retry.',
  }),
  tooManyConnections: (): ErrorFields => ({ severity: 'FATAL', code: '53300', message: 'sorry, too many clients already' }),
  databaseDoesNotExist: (database: string): ErrorFields => ({ severity: 'FATAL', code: '3D000', message: `database "${database}" does not exist` }),
  noUser: (): ErrorFields => ({ severity: 'FATAL', code: '28000', message: 'no PostgreSQL user name specified in startup packet' }),
  protocolViolation: (message: string): ErrorFields => ({ severity: 'FATAL', code: '08P01', message }),
  unsupportedProtocol: (major: number, minor: number): ErrorFields => ({
    severity: 'FATAL',
    code: '0A000',
    message: `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`,
  }),
  idleInTransactionTimeout: (): ErrorFields => ({ severity: 'FATAL', code: '25P03', message: 'terminating connection due to idle-in-transaction timeout' }),
  queryCanceled: (): ErrorFields => ({ severity: 'ERROR', code: '57014', message: 'canceling statement due to user request' }),
  adminShutdown: (): ErrorFields => ({ severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' }),
  engineCrashed: (): ErrorFields => ({
    severity: 'FATAL',
    code: '57P02',
    message: 'terminating connection because of crash of another server process',
    detail: 'The local PostgreSQL engine (PGlite) stopped; it restarts with the data on disk. Connect again.',
  }),
  notAcceptingConnections: (reason: string): ErrorFields => ({
    severity: 'FATAL',
    code: '57P03',
    message: 'the database system is not accepting connections',
    detail: reason,
  }),
  copyFromStdinUnsupported: (): ErrorFields => ({
    severity: 'ERROR',
    code: '0A000',
    message: 'COPY FROM STDIN is not supported by the local PostgreSQL (PGlite)',
    hint: 'Use INSERT (several rows per statement for bulk loads).',
  }),
  unrecognizedParameter: (name: string): ErrorFields => ({ severity: 'FATAL', code: '42704', message: `unrecognized configuration parameter "${name}"` }),
  parameterCannotBeChanged: (name: string, context: string): ErrorFields =>
    ['superuser', 'superuser-backend'].includes(context)
      ? { severity: 'FATAL', code: '42501', message: `permission denied to set parameter "${name}"` }
      : {
          severity: 'FATAL',
          code: '55P02',
          message: `parameter "${name}" cannot be changed${context === 'postmaster' ? ' without restarting the server' : context === 'sighup' ? ' now' : ''}`,
        },
};

/**
 * A statement that raises `error` inside the engine: a refusal the front end decides (a cancelled or
 * unsupported statement) then affects the client's transaction exactly as the engine's own error would.
 */
export function raiseStatement(error: ErrorFields): string {
  const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
  const hint = error.hint ? `, HINT = ${literal(error.hint)}` : '';
  return `DO $raise$BEGIN RAISE EXCEPTION USING ERRCODE = ${literal(error.code)}, MESSAGE = ${literal(error.message)}${hint}; END$raise$`;
}
