import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Endpoints of a running local Azure, as its runtime record lists them. */
export interface RuntimeEndpoints {
  identity: string;
  login: string;
  management: string;
  portal?: string;
  /** Endpoint summary per emulated resource (`serviceBus`, `openAi`, …). */
  resources: Record<string, string>;
}

/**
 * What a local Azure writes to `$LOCAL_AZURE_HOME/runtime.json`: who it is (process id, the process's start
 * mark, a random instance id) and, once every listener is ready, where its management API answers and what the
 * CLI needs to sign in (no secrets). A clean stop
 * removes the file; after a kill it stays, and {@link readStatus} sees that its process is gone.
 */
export interface RuntimeRecord {
  pid: number;
  /** The process's start mark (see `processStartMark`): tells it apart from a later process with the same id. */
  processStart?: string;
  /** Random per start; the admin API's `/health` answers it, so a health answer proves it comes from this instance. */
  instanceId: string;
  state: 'starting' | 'ready';
  startedAt: string;
  readyAt?: string;
  /** Base URL of the management API (once ready). */
  management?: string;
  /** The authority host (token endpoint under `/{tenantId}/oauth2/v2.0/token`; once ready). */
  login?: string;
  tenantId?: string;
  /** The tenant's domain: `login --username reader` means `reader@<tenantDomain>`. */
  tenantDomain?: string;
  /** The operator's UPN: who the CLI signs in as unless told otherwise. */
  operator?: string;
  /** The local CA (once ready): what the management API's certificate chains to. */
  caCertPath?: string;
  endpoints?: RuntimeEndpoints;
  /** Port per listener (once ready). */
  ports?: Record<string, number>;
}

/** What the CLI needs of a ready instance (no secrets). */
export type RuntimeInfo = Required<Pick<RuntimeRecord, 'pid' | 'management' | 'login' | 'tenantId' | 'tenantDomain' | 'operator' | 'caCertPath'>>;

/** The record's {@link RuntimeInfo} once the instance is ready; undefined while it starts. */
export function runtimeInfo(record: RuntimeRecord): RuntimeInfo | undefined {
  const { pid, management, login, tenantId, tenantDomain, operator, caCertPath } = record;
  if (record.state !== 'ready' || !management || !login || !tenantId || !tenantDomain || !operator || !caCertPath) return undefined;
  return { pid, management, login, tenantId, tenantDomain, operator, caCertPath };
}

/** Reads the runtime record; undefined when there is none or it cannot be read. */
export function readRuntimeRecord(file: string): RuntimeRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Partial<RuntimeRecord>;
    if (!Number.isInteger(record.pid) || typeof record.instanceId !== 'string' || (record.state !== 'starting' && record.state !== 'ready')) return undefined;
    return record as RuntimeRecord;
  } catch {
    return undefined;
  }
}

/**
 * What the first releases wrote to `runtime.json` while they ran: the process id, the management API and the CA, with
 * no instance id or state (their admin API's `/health` answers `{"status":"ok"}` alone).
 */
export interface EarlierRuntimeRecord {
  pid: number;
  management: string;
  caCertPath: string;
}

/**
 * Reads `file` as a runtime record an earlier version wrote ({@link EarlierRuntimeRecord}); undefined when there is none,
 * it cannot be read, or it is this version's ({@link readRuntimeRecord} reads those).
 */
export function readEarlierRuntimeRecord(file: string): EarlierRuntimeRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Partial<RuntimeRecord>;
    if (!Number.isInteger(record.pid) || record.instanceId !== undefined || typeof record.management !== 'string' || typeof record.caCertPath !== 'string') return undefined;
    return { pid: record.pid!, management: record.management, caCertPath: record.caCertPath };
  } catch {
    return undefined;
  }
}

/** Writes the runtime record atomically (readers never see half a file). */
export function writeRuntimeRecord(file: string, record: RuntimeRecord): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Removes the runtime record if it is still the one of `instanceId` (a later instance's record is left alone). */
export function removeRuntimeRecord(file: string, instanceId: string): void {
  if (readRuntimeRecord(file)?.instanceId === instanceId) rmSync(file, { force: true });
}
