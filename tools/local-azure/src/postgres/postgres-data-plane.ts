import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { LocalAzureConfig } from '../config/local-azure-config.js';
import type { DatabasePrincipal, DataPlane, DataPlaneContext, RunningDataPlane } from '../data-plane.js';
import { listen } from '../net/listen.js';
import { Autovacuum } from './autovacuum.js';
import { EntraLogin } from './entra-login.js';
import { FrontendConnection, type FrontendServer, type ServedSession } from './frontend-connection.js';
import { PgliteEngine } from './pglite-engine.js';
import { postgresErrors } from './postgres-errors.js';
import { SharedSession, type SharedSessionStatus } from './shared-session.js';

/** Options of {@link createPostgresDataPlane}. */
export interface PostgresDataPlaneOptions {
  /** Largest frontend message accepted, in bytes. Default: 67108864 (64 MiB). */
  maxMessageBytes?: number;
  /**
   * Bytes of a signed-in connection's messages that may wait for the engine, and bytes of answers its client has
   * not read, before the front end stops reading from that client until it reads (PostgreSQL's backend likewise
   * blocks on a client that does not read). One answer (a statement's whole result: PGlite answers at once) is held
   * whole, whatever its size. Default: 1048576 (1 MiB).
   */
  maxBufferedBytesPerConnection?: number;
  /** Time a client has to finish TLS and sign in, in ms (PostgreSQL's `authentication_timeout`). Default: 60000. */
  authenticationTimeoutInMs?: number;
}

const defaults = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxBufferedBytesPerConnection: 1024 * 1024,
  authenticationTimeoutInMs: 60_000,
};

/** What `GET /postgres` of the admin API answers. */
export interface PostgresStatus {
  name: string;
  resourceId: string;
  host: string;
  port: number;
  database: string;
  serverVersion: string;
  /** The engine process's id while it runs (it starts with the local Azure in a home whose PostgreSQL has data, else with the first connection). */
  engineProcessId?: number;
  extensions: readonly string[];
  maxConnections: number;
  connections: number;
  /** What the front end holds for connections (bounded per connection by `maxBufferedBytesPerConnection`). */
  buffers: PostgresBuffersStatus;
  session: SharedSessionStatus;
  principals: { name: string; principalId: string; administrator: boolean }[];
}

/** The front end's buffers, in `GET /postgres`. */
export interface PostgresBuffersStatus {
  /** Bytes held for every connection: messages not yet answered by the engine, answers not yet read by their client. */
  bytes: number;
  /** The most bytes held for one connection. */
  largestConnectionBytes: number;
  /**
   * Connections held back because they hold as much as they may: the front end reads no further message from them,
   * and runs none of their work while their answers are unread, until their client reads.
   */
  heldBackConnections: number;
}

/**
 * The local Azure Database for PostgreSQL flexible server: a real PostgreSQL with pgvector (PGlite, in a child
 * process) behind a front end that speaks the PostgreSQL protocol the way Azure does with Microsoft Entra
 * authentication only: TLS required, the password is an access token, the user a declared database principal.
 * PGlite has one session; the front end hands it to one connection at a time at transaction boundaries (see
 * {@link SharedSession} and docs/local-azure.md).
 *
 * Host env files gain libpq's variables `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER` (the host's user-assigned
 * identity's name) and `PGSSLMODE=verify-full`, and `POSTGRES_SERVER_RESOURCE_ID`. Never a password.
 */
export function createPostgresDataPlane(options: PostgresDataPlaneOptions = {}): DataPlane {
  const settings = {
    maxMessageBytes: options.maxMessageBytes ?? defaults.maxMessageBytes,
    maxBufferedBytesPerConnection: options.maxBufferedBytesPerConnection ?? defaults.maxBufferedBytesPerConnection,
    authenticationTimeoutInMs: options.authenticationTimeoutInMs ?? defaults.authenticationTimeoutInMs,
  };
  return {
    resource: 'postgres',
    async start(context: DataPlaneContext): Promise<RunningDataPlane> {
      const server = new PostgresServer(context, settings);
      const listener = await listen(() => server.createListener(), context.bind);
      // A home whose PostgreSQL has data has clients, which come back as soon as a restarted local Azure reads
      // `running`: the engine starts now, and the start (so `running`) waits until it serves — else they would wait on
      // their first login for seconds (10 s and more on a loaded machine) after the local Azure said it was ready. A
      // home whose PostgreSQL was never used starts it with the first connection (initdb takes seconds, and a local
      // Azure whose PostgreSQL nobody uses pays nothing), whose login waits until the engine runs.
      // A stop asked for meanwhile (Ctrl-C, SIGTERM) ends that start at once rather than after it (see startEngine).
      if (existsSync(join(server.dataDir, 'PG_VERSION'))) await server.startEngine(context.signal);
      const { name, database, extensions, maxConnections } = context.config.resources.postgres;
      const host = context.publicHost;
      const resourceId = context.directory.resourceId('postgres');
      const status = (): PostgresStatus => ({
        name,
        resourceId,
        host,
        port: listener.port,
        database,
        serverVersion: server.parameters().get('server_version') ?? 'unknown',
        ...(server.engineProcessId ? { engineProcessId: server.engineProcessId } : {}),
        extensions,
        maxConnections,
        connections: server.connectionCount,
        buffers: server.buffersStatus(),
        session: server.sessionStatus(),
        principals: context.databasePrincipals().map((p) => ({ name: p.name, principalId: p.principalId, administrator: p.administrator })),
      });
      return {
        port: listener.port,
        env: {
          PGHOST: host,
          PGPORT: String(listener.port),
          PGDATABASE: database,
          PGSSLMODE: 'verify-full',
          POSTGRES_SERVER_RESOURCE_ID: resourceId,
        },
        hostEnv: (hostOf): Record<string, string> => (hostOf.userAssigned[0] ? { PGUSER: hostOf.userAssigned[0].name } : {}),
        summary: `postgresql://${host}:${listener.port}/${database} — PostgreSQL with ${extensions.join(', ')} (PGlite), Entra tokens only, TLS required`,
        // Reading the server's state is the control plane's `flexibleServers/read` (Reader and above).
        adminRoutes: (api) => api.add({ method: 'GET', pattern: /^\/postgres$/, access: () => [{ action: 'Microsoft.DBforPostgreSQL/flexibleServers/read', scope: resourceId }], handle: () => status() }),
        async stop() {
          await server.stop();
          await listener.close();
        },
      };
    },
  };
}

/** The local Azure Database for PostgreSQL with its defaults. */
export const postgresDataPlane: DataPlane = createPostgresDataPlane();

/** The engine, its shared session and the connections; restarts the engine if it stops by itself. */
class PostgresServer implements FrontendServer {
  readonly secureContext: SecureContext;
  readonly login: EntraLogin;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly authenticationTimeoutInMs: number;
  private readonly settings: LocalAzureConfig['resources']['postgres'];
  private readonly connections = new Map<number, FrontendConnection>();
  private readonly admitted = new Set<FrontendConnection>();
  /** Per role name, the principal settings its role was last set up with (by this engine). */
  private readonly ensuredRoles = new Map<string, string>();
  private current: Promise<{ engine: PgliteEngine; session: SharedSession }> | undefined;
  private engineParameters: ReadonlyMap<string, string> = new Map();
  private stopping = false;
  private startFailed = false;
  /** Ends an engine start in progress when the local Azure stops. */
  private readonly abort = new AbortController();

  constructor(
    private readonly context: DataPlaneContext,
    options: typeof defaults,
  ) {
    this.settings = context.config.resources.postgres;
    this.secureContext = createSecureContext({ cert: context.tls.certPem, key: context.tls.keyPem, minVersion: 'TLSv1.2' });
    this.login = new EntraLogin(context, this.settings.database);
    this.maxMessageBytes = options.maxMessageBytes;
    this.maxBufferedBytes = options.maxBufferedBytesPerConnection;
    this.authenticationTimeoutInMs = options.authenticationTimeoutInMs;
  }

  get connectionCount(): number {
    return this.admitted.size;
  }

  /** The engine's data folder in the home. */
  get dataDir(): string {
    return join(this.context.home.dataDir, 'postgres');
  }

  /**
   * Starts the engine unless it runs; resolves once it serves, or once its start failed (that is logged, and the next
   * login tries again), or at once when `signal` aborts: the local Azure is stopping while it starts, so the server
   * stops taking connections and the engine's start is given up — its process is killed, which leaves the data folder
   * as a crash would, and PostgreSQL recovers from its write-ahead log at the next start. The server's `stop` follows.
   */
  async startEngine(signal: AbortSignal): Promise<void> {
    const abandon = (): void => {
      this.stopping = true;
      this.abort.abort();
    };
    if (signal.aborted) return abandon();
    signal.addEventListener('abort', abandon, { once: true });
    try {
      await this.engine().catch(() => undefined);
    } finally {
      signal.removeEventListener('abort', abandon);
    }
  }

  get engineProcessId(): number | undefined {
    return this.runningEngine?.running ? this.runningEngine.processId : undefined;
  }

  createListener(): Server {
    const server = createServer((socket) => {
      if (this.stopping) return socket.destroy();
      void this.engine().catch(() => undefined); // logged by engine(); the login reports it
      let processId: number;
      do processId = randomInt(1, 2 ** 31 - 1);
      while (this.connections.has(processId));
      this.connections.set(processId, new FrontendConnection(socket, this, { processId, secretKey: randomInt(-(2 ** 31), 2 ** 31 - 1) }));
    });
    return server;
  }

  admit(connection: FrontendConnection): boolean {
    if (this.admitted.size >= this.settings.maxConnections) return false;
    this.admitted.add(connection);
    return true;
  }

  async sessionFor(principal: DatabasePrincipal): Promise<ServedSession> {
    const { engine, session } = await this.engine();
    const key = principalKey(principal);
    if (this.ensuredRoles.get(principal.name) !== key) {
      try {
        await session.runAsSuperuser(principalSql(principal));
      } catch (error) {
        this.context.log(`postgres: could not set up the role of principal "${principal.name}": ${(error as Error).message}`);
        throw error;
      }
      this.ensuredRoles.set(principal.name, key);
    }
    return { session, parameters: engine.parameters, settings: engine.settings };
  }

  /** ParameterStatus values of the running engine (empty until it runs). */
  parameters(): ReadonlyMap<string, string> {
    return this.engineParameters;
  }

  cancel(processId: number, secretKey: number): void {
    const connection = this.connections.get(processId);
    if (connection?.secretKey === secretKey) connection.cancel();
  }

  closed(connection: FrontendConnection): void {
    this.connections.delete(connection.processId);
    this.admitted.delete(connection);
  }

  buffersStatus(): PostgresBuffersStatus {
    const status: PostgresBuffersStatus = { bytes: 0, largestConnectionBytes: 0, heldBackConnections: 0 };
    for (const connection of this.connections.values()) {
      const bytes = connection.bufferedBytes;
      status.bytes += bytes;
      status.largestConnectionBytes = Math.max(status.largestConnectionBytes, bytes);
      if (connection.heldBack) status.heldBackConnections++;
    }
    return status;
  }

  sessionStatus(): SharedSessionStatus {
    return this.session?.status() ?? { clients: 0, held: false, waiting: 0, queriesServed: 0 };
  }

  /** Closes every connection (57P01, as a fast shutdown does) and the engine (a checkpoint on the way out). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.autovacuum?.stop();
    for (const connection of this.connections.values()) connection.terminate(postgresErrors.adminShutdown());
    const current = await this.current?.catch(() => undefined);
    current?.session.close();
    await current?.engine.stop();
  }

  private session: SharedSession | undefined;
  private runningEngine: PgliteEngine | undefined;
  private autovacuum: Autovacuum | undefined;

  /**
   * The running engine, starting it if it is not running: at start, and again at the next login after a start
   * that failed (the failure is on the console and in that login's error).
   */
  private engine(): Promise<{ engine: PgliteEngine; session: SharedSession }> {
    if (this.stopping) return Promise.reject(new Error('the local Azure is stopping'));
    if (this.current && !this.startFailed) return this.current;
    this.startFailed = false;
    const started = performance.now();
    this.current = this.openEngine();
    this.current.then(
      ({ engine }) => this.context.log(`postgres: PostgreSQL ${engine.parameters.get('server_version') ?? ''} (PGlite) ready in ${Math.round(performance.now() - started)} ms`),
      (error: unknown) => {
        this.startFailed = true;
        if (!this.stopping) this.context.log(`postgres: the engine could not start: ${(error as Error).message}`);
      },
    );
    return this.current;
  }

  private async openEngine(): Promise<{ engine: PgliteEngine; session: SharedSession }> {
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const engine = await PgliteEngine.start({
      dataDir: this.dataDir,
      database: this.settings.database,
      extensions: this.settings.extensions,
      onCrash: (message) => this.engineStopped(message),
      onOutput: (line) => this.context.log(`postgres engine: ${line}`),
      maxRequestDurationInMs: this.settings.maxStatementDurationInMs,
      signal: this.abort.signal,
    });
    const session = new SharedSession(engine, { idleInTransactionTimeoutInMs: this.settings.idleInTransactionTimeoutInMs, log: this.context.log });
    this.engineParameters = engine.parameters;
    this.ensuredRoles.clear();
    await session.runAsSuperuser(serverSql(this.settings.database));
    // The declared principals' roles exist before the first login, which then never waits for the session.
    for (const principal of this.context.databasePrincipals()) {
      await session.runAsSuperuser(principalSql(principal));
      this.ensuredRoles.set(principal.name, principalKey(principal));
    }
    this.session = session;
    this.runningEngine = engine;
    this.autovacuum = new Autovacuum(session, this.settings.autovacuumIntervalInMs, this.context.log);
    if (!this.stopping) this.autovacuum.start();
    return { engine, session };
  }

  /** The engine stopped by itself: every connection is closed (57P02) and the engine restarts from its data. */
  private engineStopped(message: string): void {
    if (this.stopping) return;
    const connections = [...this.connections.values()];
    this.context.log(`postgres: the engine stopped (${message}); closing ${connections.length} connections and restarting it`);
    this.autovacuum?.stop();
    this.session?.close();
    this.session = undefined;
    for (const connection of connections) connection.terminate(postgresErrors.engineCrashed());
    this.current = undefined;
    void this.engine();
  }
}

/** What a principal's role was set up from: a change (re-applied access file) sets it up again. */
function principalKey(principal: DatabasePrincipal): string {
  return `${principal.principalId}\0${principal.administrator}`;
}

const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
const identifier = (value: string): string => `"${value.replaceAll('"', '""')}"`;

/**
 * Server-wide setup, as the local counterpart of Azure's: `azure_pg_admin` (the role of administrators, not a
 * superuser) owns the database, so its members may create tables in `public` and allow-listed extensions.
 */
function serverSql(database: string): string {
  return `DO $setup$BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'azure_pg_admin') THEN CREATE ROLE azure_pg_admin NOLOGIN; END IF;
  END$setup$;
  ALTER DATABASE ${identifier(database)} OWNER TO azure_pg_admin;`;
}

/**
 * The role of a database principal, as `pgaadauth_create_principal` makes it: a login role named after the
 * identity; an administrator is a member of `azure_pg_admin` with CREATEROLE and CREATEDB. Azure keeps the
 * object id in a security label; the local server keeps it in the role's comment (logins are checked against
 * the access file).
 */
function principalSql(principal: DatabasePrincipal): string {
  const role = identifier(principal.name);
  const admin = principal.administrator;
  return `DO $principal$BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${literal(principal.name)}) THEN CREATE ROLE ${role} LOGIN; END IF;
  END$principal$;
  ALTER ROLE ${role} LOGIN ${admin ? 'CREATEDB CREATEROLE' : 'NOCREATEDB NOCREATEROLE'};
  ${admin ? `GRANT azure_pg_admin TO ${role};` : `REVOKE azure_pg_admin FROM ${role};`}
  COMMENT ON ROLE ${role} IS ${literal(`Microsoft Entra principal: aadauth,oid=${principal.principalId},type=service${admin ? ',admin' : ''}`)};`;
}
