import { Logger, type LoggerService } from '@nestjs/common';
import pg from 'pg';
import type { ResolvedAuthOptions } from '../auth-options.js';
import type { AzureIdentityService } from '../azure-identity.service.js';
import type { AccessDiagnostics } from '../diagnostics/access-diagnostics.js';
import { AuthConfigurationError } from '../errors.js';

/** Defaults of `create('postgres')`, in one place. */
export const postgresPoolDefaults = {
  port: 5432,
  /** Connections the pool opens at most. */
  maxConnections: 10,
  /** Budget of opening one connection: TCP, TLS, the token, the sign-in. */
  connectionTimeoutInMs: 10_000,
  /** An idle connection is closed after this long. */
  idleTimeoutInMs: 30_000,
} as const;

/** Options of `create('postgres')`. Connection settings default to `resources.postgres` of the module options. */
export interface PostgresFactoryOptions {
  /** Default: `resources.postgres.host` (`PGHOST`). */
  host?: string;
  /** Default: `resources.postgres.port` (`PGPORT`), else 5432. */
  port?: number;
  /** Default: `resources.postgres.database` (`PGDATABASE`). */
  database?: string;
  /** Default: `resources.postgres.user` (`PGUSER`): the identity's name. */
  user?: string;
  /** Connections the pool opens at most. Default: 10. */
  maxConnections?: number;
  /** Budget of opening one connection (TCP, TLS, token, sign-in), in ms. Default: 10 000. */
  connectionTimeoutInMs?: number;
  /** An idle connection is closed after this long, in ms. Default: 30 000. */
  idleTimeoutInMs?: number;
  /** `application_name` the server shows for the connections. Default: none. */
  applicationName?: string;
}

/** What the factory entry gets from the auth module. */
export interface PostgresPoolContext {
  identity: AzureIdentityService;
  diagnostics: AccessDiagnostics;
  options: ResolvedAuthOptions;
}

/**
 * A node-postgres `Pool` that signs in as the process's identity, the way Azure Database for PostgreSQL's
 * Microsoft Entra authentication expects.
 * Rules:
 * 1. The password is a callback that returns the identity's current token for the `postgres` audience (cached and
 *    refreshed like every other audience), so each new connection, after a refresh too, sends a fresh token. A token
 *    is checked only at sign-in: a connection outlives the token it opened with.
 * 2. TLS always, with full verification: the certificate must chain to a CA the platform trusts (the system store,
 *    plus `NODE_EXTRA_CA_CERTS`) and name the host (`PGSSLMODE=verify-full`).
 * 3. Every setting is explicit: node-postgres never falls back to `PGPASSWORD`, `~/.pgpass` or other variables.
 * 4. A refused sign-in (no database principal, a token the server does not take) rejects with a
 *    `DatabaseAccessDeniedError` naming the identity, the server and the fix; other errors are node-postgres's own.
 * 5. A connection lost while idle in the pool, or while checked out between two queries (the server restarted), is
 *    logged, never an unhandled 'error' that ends the process: the pool opens a new one on the next query.
 */
export function createPostgresPool(context: PostgresPoolContext, factoryOptions: PostgresFactoryOptions): pg.Pool {
  const { identity, diagnostics, options } = context;
  const configured = options.resources.postgres;
  const host = factoryOptions.host ?? configured?.host;
  const database = factoryOptions.database ?? configured?.database;
  const user = factoryOptions.user ?? configured?.user;
  const missing = [!host && 'host (PGHOST)', !database && 'database (PGDATABASE)', !user && 'user (PGUSER)'].filter(Boolean);
  if (!host || !database || !user) {
    throw new AuthConfigurationError(
      'OptionsInvalid',
      `Cannot create the postgres client: resources.postgres.${missing.join(', ')} not configured (pass it in the module options or to create()).`,
    );
  }
  const port = factoryOptions.port ?? configured?.port ?? postgresPoolDefaults.port;
  const token = identity.tokenProvider('postgres');
  const signIn = { host, port, database, user };
  const logger: LoggerService = options.logger ?? new Logger('Postgres');

  class DiagnosedPostgresClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // pg-pool listens for errors on idle connections only. A checked-out connection that drops between two queries
      // (the server restarted mid-transaction) emits 'error' with nobody listening, which would end the process;
      // its next query fails instead, and the connection is not given back to the pool.
      this.on('error', (error: Error) => {
        if (this.listenerCount('error') === 1) logger.warn(`PostgreSQL ${host}:${port}: a connection in use failed (${error.message}); its next query fails`);
      });
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ((error: Error) => void) | ((error: null, client: pg.Client) => void)): void;
    override connect(callback?: ((error: Error) => void) | ((error: null, client: pg.Client) => void)): Promise<pg.Client> | void {
      // After the password callback, node-postgres keeps the string it sent as `password`.
      const explain = (error: Error): Error => {
        const sent = (this as unknown as { password?: unknown }).password;
        return diagnostics.explainDatabase(error, { ...signIn, ...(typeof sent === 'string' ? { token: sent } : {}) }) ?? error;
      };
      if (callback) return super.connect((error: Error | null) => (callback as (error: Error | null, client?: pg.Client) => void)(error ? explain(error) : null, this));
      return super.connect().catch((error: Error) => {
        throw explain(error);
      });
    }
  }

  const pool = new pg.Pool({
    Client: DiagnosedPostgresClient,
    host,
    port,
    database,
    user,
    password: () => token(),
    ssl: { rejectUnauthorized: true },
    max: factoryOptions.maxConnections ?? postgresPoolDefaults.maxConnections,
    connectionTimeoutMillis: factoryOptions.connectionTimeoutInMs ?? postgresPoolDefaults.connectionTimeoutInMs,
    idleTimeoutMillis: factoryOptions.idleTimeoutInMs ?? postgresPoolDefaults.idleTimeoutInMs,
    keepAlive: true,
    ...(factoryOptions.applicationName ? { application_name: factoryOptions.applicationName } : {}),
  });
  pool.on('error', (error) => {
    // 57P01 closes every connection of a server that stops or restarts (a planned restart, Azure's maintenance, the
    // local Azure stopping with the rest of the system on Ctrl-C): routine for an idle one, nothing to act on.
    if ((error as { code?: unknown }).code === '57P01') logger.log(`PostgreSQL ${host}:${port}: the server closed an idle connection (${error.message}); the next query opens a new one`);
    else logger.warn(`PostgreSQL ${host}:${port}: an idle connection failed (${error.message}); the next query opens a new one`);
  });
  return pool;
}
