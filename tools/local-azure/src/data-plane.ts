import type { AuditLog } from './audit/audit-log.js';
import type { LocalAzureConfig, ResourceKey } from './config/local-azure-config.js';
import type { Directory, Host } from './entra/directory.js';
import type { LocalFaults } from './faults/local-faults.js';
import type { ResourceGuard } from './guard/resource-guard.js';
import type { LocalAzureHome } from './home.js';
import type { Server } from 'node:net';
import type { ManagementApi } from './management/management-api.js';
import type { BindOptions, BoundListener } from './net/listen.js';
import type { ServiceBusOperations } from './servicebus/admin-routes.js';
import type { ServerCredentials } from './tls/certificate-authority.js';

/** Writes one line of the local Azure's console output. */
export type ConsoleLog = (line: string) => void;

/**
 * A principal of a database server declared in the access file: a login role named after the identity (as
 * Azure names a managed identity's role) and bound to the identity's object id.
 */
export interface DatabasePrincipal {
  /** The database server. */
  resource: 'postgres';
  /** Role name: the identity's name. */
  name: string;
  /** Object id the token's `oid` must carry. */
  principalId: string;
  clientId: string;
  /** Server administrator (Azure's Entra administrator: member of `azure_pg_admin`). */
  administrator: boolean;
  purpose: string;
}

/** What every emulated data plane gets from the local Azure at start. */
export interface DataPlaneContext {
  home: LocalAzureHome;
  config: LocalAzureConfig;
  directory: Directory;
  /** Verifies bearer tokens and checks data actions (logs every decision). */
  guard: ResourceGuard;
  auditLog: AuditLog;
  /** The local CA and the server certificate every TLS listener uses. */
  tls: ServerCredentials;
  /**
   * Where to bind the data plane's listener: the port configured for it (`network.ports.<resource>`), else the
   * port it had at the last start (kept in the home, so endpoints survive restarts), else 0 (a free port); and
   * loopback or all interfaces. Report the port bound as {@link RunningDataPlane.port}: it is kept for the next start.
   */
  bind: BindOptions;
  /**
   * Binds another listener of the data plane (beyond the one on {@link bind}) under its own name: its port is
   * chosen and kept like every other (`network.ports.<name>` if configured), and it is closed on stop.
   */
  listen(name: string, create: () => Server): Promise<BoundListener>;
  /** Host name for URLs written into env files. */
  publicHost: string;
  /** Faults injected by the operator or a test (`fault <target> <mode>`); data planes read theirs on every request. */
  faults: LocalFaults;
  /** The database principals the access file declares now (re-read when the access file is re-applied). */
  databasePrincipals(): readonly DatabasePrincipal[];
  log: ConsoleLog;
  /**
   * Aborted when the local Azure is told to stop while it is still starting: a data plane whose start waits on
   * something slow (the PostgreSQL engine's start) gives that up and returns at once; the local Azure then stops
   * every data plane that started, as it stops.
   */
  signal: AbortSignal;
}

/** A running data plane. */
export interface RunningDataPlane {
  /** The port it listens on. */
  port: number;
  /** Variables every host's env file gains (the same names the services read in Azure). */
  env: Record<string, string>;
  /** Variables that depend on the host (e.g. the database user named after its identity). Default: none. */
  hostEnv?(host: Host): Record<string, string>;
  /** One line for the start-up summary (what it serves, where). */
  summary: string;
  /** The address clients connect to (`amqps://host:port`, `https://host:port`), for `status`. **Default**: the summary. */
  endpoint?: string;
  /** Adds the data plane's operator routes to the management API, each with its RBAC checks (optional). */
  adminRoutes?(api: ManagementApi): void;
  /** Operator access to a Service Bus namespace (the portal and the dead-letter alert use it). */
  serviceBus?: ServiceBusOperations;
  stop(): Promise<void>;
}

/** An emulated Azure resource (Service Bus, OpenAI, Vision): started after identity and RBAC. */
export interface DataPlane {
  /** The resource it emulates, as the access file names it. */
  resource: ResourceKey;
  start(context: DataPlaneContext): Promise<RunningDataPlane>;
}
