/**
 * Stable codes of every error `@keyless/auth` throws. Match on `code`, not on messages.
 */
export type AuthErrorCode =
  /** `clientId` (the app's `AZURE_CLIENT_ID`) is missing or empty in managed-identity mode. */
  | 'ClientIdMissing'
  /** `clientId` is not a GUID (often the identity's name, object id confusion or ARM id). */
  | 'ClientIdMalformed'
  /** An audience is neither a well-known Azure audience nor an application ID URI. */
  | 'AudienceUnknown'
  /** Another option is invalid (the message lists every problem). */
  | 'OptionsInvalid'
  /** A key, connection string or other secret was found in the configuration. */
  | 'SecretSetting'
  /** The identity endpoint refused the connection, or the network could not reach it. */
  | 'IdentityEndpointUnreachable'
  /** The identity endpoint did not answer within the configured timeout. */
  | 'IdentityEndpointTimeout'
  /** The identity endpoint answered something that is not a token response. */
  | 'IdentityEndpointInvalidResponse'
  /** The identity endpoint answered with a server error (5xx) after the SDK's retries. */
  | 'IdentityEndpointError'
  /** The identity endpoint throttled the host (429): too many token requests from the host's processes. */
  | 'IdentityEndpointThrottled'
  /** The user-assigned identity named by `clientId` is not assigned to this host. */
  | 'IdentityNotAssigned'
  /** The tenant has no application for the requested audience (AADSTS500011). */
  | 'AudienceNotRegistered'
  /** The identity endpoint refused the token request for another reason (4xx). */
  | 'TokenRequestRejected'
  /** A refresh returned the token already held: the SDK swallowed its own refresh failure. */
  | 'TokenNotRenewed'
  /** Developer mode: the Azure CLI / azd is missing, not logged in, or failed. */
  | 'DeveloperLoginFailed'
  /** A token request failed in a way none of the other codes describes. */
  | 'TokenRequestFailed'
  /** The startup access check could not get a token for one or more declared audiences. */
  | 'StartupAccessCheckFailed'
  /** An Azure data plane refused a call for lack of a role (401/403). */
  | 'AccessDenied'
  /** A PostgreSQL server refused the identity's sign-in (no database principal, a token it does not accept). */
  | 'DatabaseAccessDenied';

/** Codes of {@link AuthConfigurationError}. */
export type AuthConfigurationErrorCode = Extract<AuthErrorCode, 'ClientIdMissing' | 'ClientIdMalformed' | 'AudienceUnknown' | 'OptionsInvalid'>;

/** Codes of {@link TokenAcquisitionError}. */
export type TokenAcquisitionErrorCode = Extract<
  AuthErrorCode,
  | 'IdentityEndpointUnreachable'
  | 'IdentityEndpointTimeout'
  | 'IdentityEndpointInvalidResponse'
  | 'IdentityEndpointError'
  | 'IdentityEndpointThrottled'
  | 'IdentityNotAssigned'
  | 'AudienceNotRegistered'
  | 'TokenRequestRejected'
  | 'TokenNotRenewed'
  | 'DeveloperLoginFailed'
  | 'TokenRequestFailed'
>;

/** Names of the error classes of this library (what {@link isAuthError} recognises). */
const authErrorNames = new Set([
  'AuthError',
  'AuthConfigurationError',
  'SecretSettingError',
  'TokenAcquisitionError',
  'StartupAccessCheckError',
  'AccessDeniedError',
  'DatabaseAccessDeniedError',
]);

/**
 * Base class of every error `@keyless/auth` throws: a stable `code`, an explicit `name`, and the
 * original error as `cause` when there was one.
 */
export class AuthError extends Error {
  override readonly name: string = 'AuthError';

  constructor(
    /** Stable code (see {@link AuthErrorCode}). */
    readonly code: AuthErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Invalid module options: the message lists every problem found, each with what to do. */
export class AuthConfigurationError extends AuthError {
  override readonly name = 'AuthConfigurationError';

  constructor(
    override readonly code: AuthConfigurationErrorCode,
    message: string,
    /** One line per problem, `path: what is wrong`. */
    readonly problems: readonly string[] = [message],
  ) {
    super(code, message);
  }
}

/** A configuration setting that holds (or would make an SDK use) a secret. */
export interface SecretSetting {
  /** The variable or option name. The value is never kept. */
  name: string;
  /** What gave it away: the name pattern or the value marker (`SharedAccessKey=`, …). */
  reason: string;
  /** What to configure instead. */
  instead: string;
}

/** Secrets found in the configuration; services refuse to start with any. */
export class SecretSettingError extends AuthError {
  override readonly name = 'SecretSettingError';

  constructor(readonly settings: readonly SecretSetting[]) {
    super(
      'SecretSetting',
      `Refusing to start: ${settings.length} setting(s) hold a key or connection string, and Keyless services use no secrets.\n` +
        settings.map((s) => `  - ${s.name} (${s.reason}): ${s.instead}`).join('\n'),
    );
  }
}

/** Which credential the library runs with. */
export type CredentialMode = 'managed-identity' | 'azure-cli' | 'azure-developer-cli';

/** Where a failed token request went and for whom. */
export interface TokenRequestContext {
  mode: CredentialMode;
  /** Client id of the user-assigned identity (managed-identity mode). */
  clientId?: string;
  /** The resource the token was for (`https://cognitiveservices.azure.com`, `api://keyless-gateway`). */
  resource: string;
  /** The identity endpoint the SDK called, without query (managed-identity mode, once a request was sent). */
  endpoint?: string;
}

/** A token could not be obtained. The message names the identity, the endpoint and what to check. */
export class TokenAcquisitionError extends AuthError {
  override readonly name = 'TokenAcquisitionError';

  constructor(
    override readonly code: TokenAcquisitionErrorCode,
    message: string,
    readonly context: TokenRequestContext,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** The startup access check failed: one {@link TokenAcquisitionError} per audience that failed. */
export class StartupAccessCheckError extends AuthError {
  override readonly name = 'StartupAccessCheckError';

  constructor(readonly failures: readonly TokenAcquisitionError[]) {
    super(
      'StartupAccessCheckFailed',
      `Startup access check failed for ${failures.length} audience(s); the service is not ready.\n` +
        failures.map((f) => `  - [${f.code}] ${f.message}`).join('\n'),
      { cause: failures[0] },
    );
  }
}

/** Who was refused: read from the claims of the token the call carried. */
export interface Principal {
  /** `appid` (managed identity: its client id). */
  clientId?: string;
  /** `oid`: the object id role assignments are made to. */
  objectId?: string;
  tenantId?: string;
  /** How `az role assignment create --assignee-principal-type` names it. */
  type: 'ServicePrincipal' | 'User';
}

/** The role that would have allowed the call. */
export interface RoleNeeded {
  name: string;
  /** Built-in role definition id (the same GUID in every tenant). */
  id: string;
}

/** What an {@link AccessDeniedError} reports. */
export interface AccessDenial {
  principal: Principal;
  /** Which Azure resource refused (`openAi`, `vision`, `serviceBus`, `keyVault`). */
  resource: 'openAi' | 'vision' | 'serviceBus' | 'keyVault';
  /** The data action that was checked (as Azure names it), when known. */
  dataAction?: string;
  /** The least-privileged built-in role that grants the data action. */
  role: RoleNeeded;
  /** ARM scope to assign the role at (the resource, or a Service Bus entity), when configured. */
  scope?: string;
  /** The `az role assignment create …` command that fixes it. */
  fixCommand: string;
  /** The same command for the local Azure's CLI. */
  localFixCommand: string;
  /** What the data plane said (its error code and message). */
  detail: string;
}

/**
 * An Azure data plane refused a call because the identity lacks a role. The message names the
 * principal (client id and object id), the resource, the data action, the role that grants it and
 * the exact command that assigns it.
 */
export class AccessDeniedError extends AuthError implements AccessDenial {
  override readonly name = 'AccessDeniedError';
  readonly principal: Principal;
  readonly resource: AccessDenial['resource'];
  readonly dataAction?: string;
  readonly role: RoleNeeded;
  readonly scope?: string;
  readonly fixCommand: string;
  readonly localFixCommand: string;
  readonly detail: string;

  constructor(denial: AccessDenial, options?: { cause?: unknown }) {
    super('AccessDenied', describeDenial(denial), options);
    this.principal = denial.principal;
    this.resource = denial.resource;
    if (denial.dataAction) this.dataAction = denial.dataAction;
    this.role = denial.role;
    if (denial.scope) this.scope = denial.scope;
    this.fixCommand = denial.fixCommand;
    this.localFixCommand = denial.localFixCommand;
    this.detail = denial.detail;
  }
}

function describeDenial(d: AccessDenial): string {
  const who =
    d.principal.type === 'User'
      ? `the signed-in developer (object id ${d.principal.objectId ?? 'unknown'})`
      : `identity ${d.principal.clientId ?? 'unknown'} (object id ${d.principal.objectId ?? 'unknown'})`;
  return [
    `Access denied by ${d.resource}: ${who} lacks ${d.dataAction ? `the data action ${d.dataAction}` : 'a required data action'}` +
      ` on ${d.scope ?? `the ${d.resource} resource (its ARM id is not configured)`}.`,
    `The built-in role "${d.role.name}" (${d.role.id}) grants it. Assign it with:`,
    `  ${d.fixCommand}`,
    `  local Azure: ${d.localFixCommand}`,
    'New role assignments can take several minutes to apply in Azure. Make the assignment permanent in infra/access.json.',
    `Azure said: ${d.detail}`,
  ].join('\n');
}

/**
 * Why a PostgreSQL server refused the identity's sign-in.
 * - `PrincipalMissing`: no database principal has the user name (`PGUSER`) and the token's object id; the server
 *   answers as for a wrong password (`28P01`), so a `PGUSER` that is not the identity's name looks the same.
 * - `AudienceInvalid`: the token is not for `https://ossrdbms-aad.database.windows.net`.
 * - `TokenExpired`: the token had expired when the server checked it (clock skew between host and server).
 * - `TokenInvalid`: the server did not take the token for another reason (no `oid` claim, not a token at all).
 */
export type DatabaseRefusalReason = 'PrincipalMissing' | 'AudienceInvalid' | 'TokenExpired' | 'TokenInvalid';

/** What a {@link DatabaseAccessDeniedError} reports. */
export interface DatabaseAccessDenial {
  reason: DatabaseRefusalReason;
  /** Who signed in: from the claims of the token sent as the password. */
  principal: Principal;
  /** The user name the identity signed in as (`PGUSER`). */
  user: string;
  /** The server and database (`PGHOST`, `PGPORT`, `PGDATABASE`). */
  server: { host: string; port: number; database: string };
  /** What fixes it in Azure: the SQL or `az` command. */
  fix: string;
  /** What fixes it against the local Azure. */
  localFix: string;
  /** What the server said: SQLSTATE and message. */
  detail: string;
}

/**
 * A PostgreSQL server refused the identity's sign-in. In the style of {@link AccessDeniedError}: the message names
 * the identity (client id, object id, user name), the server and database, and the exact fix in Azure
 * (`pgaadauth_create_principal_with_oid`, or the identity as the server's Microsoft Entra administrator) and locally
 * (the principal in `infra/access.json`).
 */
export class DatabaseAccessDeniedError extends AuthError implements DatabaseAccessDenial {
  override readonly name = 'DatabaseAccessDeniedError';
  readonly reason: DatabaseRefusalReason;
  readonly principal: Principal;
  readonly user: string;
  readonly server: DatabaseAccessDenial['server'];
  readonly fix: string;
  readonly localFix: string;
  readonly detail: string;

  constructor(denial: DatabaseAccessDenial, options?: { cause?: unknown }) {
    super('DatabaseAccessDenied', describeDatabaseDenial(denial), options);
    this.reason = denial.reason;
    this.principal = denial.principal;
    this.user = denial.user;
    this.server = denial.server;
    this.fix = denial.fix;
    this.localFix = denial.localFix;
    this.detail = denial.detail;
  }
}

const databaseRefusals: Record<DatabaseRefusalReason, (d: DatabaseAccessDenial) => string> = {
  PrincipalMissing: (d) =>
    `it signed in as "${d.user}" with a valid Microsoft Entra token, and the server has no database principal "${d.user}" for its object id ` +
    `(or PGUSER is not the identity's name).`,
  AudienceInvalid: () => 'the token sent as the password is not for Azure Database for PostgreSQL (audience https://ossrdbms-aad.database.windows.net).',
  TokenExpired: () => 'the token sent as the password had expired when the server checked it.',
  TokenInvalid: () => 'the server did not accept the token sent as the password.',
};

function describeDatabaseDenial(d: DatabaseAccessDenial): string {
  const who =
    d.principal.type === 'User'
      ? `the signed-in developer (object id ${d.principal.objectId ?? 'unknown'})`
      : `identity ${d.principal.clientId ?? 'unknown'} (object id ${d.principal.objectId ?? 'unknown'})`;
  return [
    `Database access denied by PostgreSQL ${d.server.host}:${d.server.port} (database "${d.server.database}") to ${who}: ${databaseRefusals[d.reason](d)}`,
    `Fix in Azure: ${d.fix}`,
    `Fix locally: ${d.localFix}`,
    `The server said: ${d.detail}`,
  ].join('\n');
}

/** Whether `error` is one of this library's errors (checked by `name`, so it works across copies of the package). */
export function isAuthError(error: unknown): error is AuthError {
  return error instanceof Error && authErrorNames.has(error.name) && typeof (error as { code?: unknown }).code === 'string';
}

/** Whether `error` is a {@link DatabaseAccessDeniedError}. */
export function isDatabaseAccessDeniedError(error: unknown): error is DatabaseAccessDeniedError {
  return isAuthError(error) && error.name === 'DatabaseAccessDeniedError';
}

/** Whether `error` is an {@link AccessDeniedError}. */
export function isAccessDeniedError(error: unknown): error is AccessDeniedError {
  return isAuthError(error) && error.name === 'AccessDeniedError';
}
