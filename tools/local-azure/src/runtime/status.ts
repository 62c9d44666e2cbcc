import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { LocalAzureHome } from '../home.js';
import { isSameProcess, processExists } from './process-identity.js';
import { readEarlierRuntimeRecord, readRuntimeRecord, type RuntimeEndpoints, type RuntimeRecord } from './runtime-record.js';

/**
 * - `running`: its process runs and its admin API answered the health probe as this very instance.
 * - `starting`: its process runs and has not finished starting.
 * - `not-responding`: its process runs and says it is ready, but the admin API did not answer the probe; or a local
 *   Azure of an earlier version runs for the home, which this one cannot talk to (`detail` says so and what to do).
 * - `stopped`: no process runs for the home (never started, stopped, or killed: then `detail` says so).
 */
export type LocalAzureState = 'running' | 'starting' | 'not-responding' | 'stopped';

/** Whether a local Azure runs for a home, and where. */
export interface LocalAzureStatus {
  state: LocalAzureState;
  /** The home folder (`$LOCAL_AZURE_HOME`). */
  home: string;
  /** One sentence on why the state is what it is, and what to do when it is not `running`. */
  detail: string;
  pid?: number;
  instanceId?: string;
  startedAt?: string;
  readyAt?: string;
  /** The admin API's base URL. */
  management?: string;
  endpoints?: RuntimeEndpoints;
  ports?: Record<string, number>;
  /** Set when what runs for the home is a local Azure of an earlier version (`not-responding`; `detail` says what to do). */
  earlierVersion?: true;
}

/** Exit codes of `local-azure status`: 0 running, 3 not running, 4 starting or not answering. */
export const statusExitCodes: Readonly<Record<LocalAzureState, number>> = { running: 0, stopped: 3, starting: 4, 'not-responding': 4 };

/** Defaults of the status probes. */
export const statusDefaults = {
  /** How long the admin API's health answer may take. */
  healthTimeoutInMs: 2_000,
  /** Interval between probes while waiting. */
  pollIntervalInMs: 100,
} as const;

/** Options of {@link readStatus}. */
export interface StatusOptions {
  /** How long the health probe may take, in ms. Default: {@link statusDefaults}.healthTimeoutInMs. */
  healthTimeoutInMs?: number;
}

/**
 * The one ready signal of the local Azure. It reads `runtime.json` and believes it only as far as it can
 * check it: the process must still run (same id and start mark, so a recycled process id does not count)
 * and, once it says it is ready, its admin API must answer `/health` with the record's instance id.
 * A record left behind by a killed process therefore reads `stopped`, never `running`.
 */
export async function readStatus(home: LocalAzureHome, options: StatusOptions = {}): Promise<LocalAzureStatus> {
  const record = readRuntimeRecord(home.runtimeFile);
  if (!record) {
    const earlier = await readEarlierInstance(home, options);
    if (earlier) return earlier;
    return { state: 'stopped', home: home.root, detail: `No local Azure runs for ${home.root}. Start one with \`${home.command('npm run local-azure')}\`.` };
  }
  const facts = describeRecord(home, record);
  if (!isSameProcess(record.pid, record.processStart)) {
    return {
      ...facts,
      state: 'stopped',
      detail:
        `No local Azure runs for ${home.root}: the process that started it (pid ${record.pid}, ${record.startedAt}) is gone without ` +
        `cleaning up (killed?). Its env files still describe its endpoints, which a new start reuses: \`${home.command('npm run local-azure')}\`.`,
    };
  }
  if (record.state === 'starting' || !record.management || !record.caCertPath) {
    return { ...facts, state: 'starting', detail: `The local Azure for ${home.root} is starting (pid ${record.pid}).` };
  }
  const answer = await probeHealth(record.management, record.caCertPath, options.healthTimeoutInMs ?? statusDefaults.healthTimeoutInMs);
  if (answer.instanceId === record.instanceId) {
    return { ...facts, state: 'running', detail: `The local Azure for ${home.root} is running (pid ${record.pid}); admin API ${record.management}.` };
  }
  return {
    ...facts,
    state: 'not-responding',
    detail:
      `The local Azure for ${home.root} (pid ${record.pid}) did not answer at ${record.management}/health: ` +
      `${answer.problem ?? (answer.instanceId ? `the answer came from another instance (${answer.instanceId})` : 'the answer named no instance')}. If it stays so, stop it (kill ${record.pid}) and start it again.`,
  };
}

/**
 * Polls {@link readStatus} until the local Azure is `running` or `timeoutInMs` has passed; resolves with the
 * last status (check its `state`). `stopWaiting` ends the wait early (e.g. the process being waited for exited).
 */
export async function waitUntilRunning(
  home: LocalAzureHome,
  timeoutInMs: number,
  options: StatusOptions & { pollIntervalInMs?: number; stopWaiting?: () => boolean } = {},
): Promise<LocalAzureStatus> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const status = await readStatus(home, options);
    if (status.state === 'running' || Date.now() >= deadline || options.stopWaiting?.()) return status;
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalInMs ?? statusDefaults.pollIntervalInMs));
  }
}

/**
 * A local Azure of an earlier version (one from before the runtime record had an instance id) that still runs for
 * `home`, as `not-responding`; undefined when there is none. It counts as running only when its process lives and its
 * admin API answers `/health` with ok: a record it left behind after a kill, whose process id another process took
 * since, does not stop a start. A start beside it would carry the home forward under its feet (the two would write the
 * same stores), and this version's CLI cannot sign in to it.
 */
async function readEarlierInstance(home: LocalAzureHome, options: StatusOptions): Promise<LocalAzureStatus | undefined> {
  const earlier = readEarlierRuntimeRecord(home.runtimeFile);
  if (!earlier || !processExists(earlier.pid)) return undefined;
  const answer = await probeHealth(earlier.management, earlier.caCertPath, options.healthTimeoutInMs ?? statusDefaults.healthTimeoutInMs);
  if (!answer.ok) return undefined;
  return {
    state: 'not-responding',
    earlierVersion: true,
    home: home.root,
    pid: earlier.pid,
    management: earlier.management,
    detail:
      `A local Azure of an earlier version runs for ${home.root} (pid ${earlier.pid}, management API ${earlier.management}); this version cannot work with it, ` +
      `nor start beside it on the same home. Stop it (Ctrl-C in its terminal, or kill ${earlier.pid}), then start this version (\`${home.command('npm start')}\` or ` +
      `\`${home.command('npm run local-azure')}\`): it carries the home forward, keeping its tenant, role assignments and messages.`,
  };
}

function describeRecord(home: LocalAzureHome, record: RuntimeRecord): Omit<LocalAzureStatus, 'state' | 'detail'> {
  return {
    home: home.root,
    pid: record.pid,
    instanceId: record.instanceId,
    startedAt: record.startedAt,
    ...(record.readyAt ? { readyAt: record.readyAt } : {}),
    ...(record.management ? { management: record.management } : {}),
    ...(record.endpoints ? { endpoints: record.endpoints } : {}),
    ...(record.ports ? { ports: record.ports } : {}),
  };
}

/**
 * GET `<management>/health` trusting the local CA: whether it answered 200 with `"status": "ok"`, the instance id it
 * answered (earlier versions answer none), or what went wrong.
 */
function probeHealth(management: string, caCertPath: string, timeoutInMs: number): Promise<{ ok?: true; instanceId?: string; problem?: string }> {
  if (!existsSync(caCertPath)) return Promise.resolve({ problem: `its CA file ${caCertPath} is missing` });
  const ca = readFileSync(caCertPath, 'utf8');
  return new Promise((resolve) => {
    const req = request(new URL('/health', management), { ca, timeout: timeoutInMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.length + body.length <= 4096 ? chunk : ''));
      res.on('end', () => {
        try {
          const answer = JSON.parse(body) as { status?: string; instanceId?: string };
          const ok = res.statusCode === 200 && answer.status === 'ok';
          resolve(ok ? { ok, ...(typeof answer.instanceId === 'string' && answer.instanceId ? { instanceId: answer.instanceId } : {}) } : { problem: `it answered ${res.statusCode}` });
        } catch {
          resolve({ problem: `it answered ${res.statusCode} with a body that is not its health answer` });
        }
      });
      res.on('error', (error) => resolve({ problem: error.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutInMs} ms`)));
    req.on('error', (error) => resolve({ problem: error.message }));
    req.end();
  });
}
