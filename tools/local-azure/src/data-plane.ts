import type { AuditLog } from './audit/audit-log.js';
import type { LocalAzureConfig, ResourceKey } from './config/local-azure-config.js';
import type { Directory } from './entra/directory.js';
import type { LocalFaults } from './faults/local-faults.js';
import type { ResourceGuard } from './guard/resource-guard.js';
import type { LocalAzureHome } from './home.js';
import type { ManagementApi } from './management/management-api.js';
import type { BindOptions } from './net/listen.js';
import type { ServiceBusOperations } from './servicebus/admin-routes.js';
import type { ServerCredentials } from './tls/certificate-authority.js';

/** Writes one line of the local Azure's console output. */
export type ConsoleLog = (line: string) => void;

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
  /** Where to bind: the configured port for this data plane, and loopback or all interfaces. */
  bind: BindOptions;
  /** Host name for URLs written into env files. */
  publicHost: string;
  /** Faults injected by the operator or a test (`fault <target> <mode>`); data planes read theirs on every request. */
  faults: LocalFaults;
  log: ConsoleLog;
}

/** A running data plane. */
export interface RunningDataPlane {
  /** The port it listens on. */
  port: number;
  /** Variables every host's env file gains (the same names the services read in Azure). */
  env: Record<string, string>;
  /** One line for the start-up summary (what it serves, where). */
  summary: string;
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
