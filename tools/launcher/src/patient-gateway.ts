import { setTimeout as sleep } from 'node:timers/promises';
import type { Progress } from './progress.js';
import { retryAfterInMs, type StorefrontCaller } from './storefront-caller.js';

const defaults = {
  /**
   * How long the gateway may answer nothing but 503/504 (or refuse connections) before a task gives up. A slow
   * machine sees these while the services are still catching up after a start: the gateway answers 504 once a
   * request has waited its REQUEST_TIMEOUT_MS (10 s by default) for a service.
   */
  maxRetryTimeInMs: 180_000,
  /** Tries of one request, the first included, before the task gives up on it. */
  maxAttempts: 20,
  /** The first wait after a transient answer; each further one doubles, up to `maxRetryDelayInMs`. */
  firstRetryDelayInMs: 500,
  maxRetryDelayInMs: 8_000,
  /** How often a wait for the gateway is reported at most, so that a long one is not silent and a busy one not noisy. */
  noticeIntervalInMs: 5_000,
};

/**
 * How a launcher task that calls the gateway right after the start (the demo catalog's load, an earlier release's
 * catalog carried over) waits out a gateway whose services are still catching up, and how it is stopped.
 */
export interface PatientGatewayOptions {
  /**
   * Aborting it ends the task at once: its requests in flight are cancelled, its retry waits end, it prints nothing
   * more, and the task rejects with the signal's reason (`npm start` aborts it when Ctrl-C stops it).
   * **Default:** none.
   */
  signal?: AbortSignal;
  /**
   * How long the gateway may answer only 503, 504 or a refused or reset connection, to every request of the task,
   * before the task fails; any other answer starts the count again. **Default:** 180 000 ms.
   */
  maxRetryTimeInMs?: number;
  /** Tries of one request, the first included, before the task fails. **Default:** 20. */
  maxAttempts?: number;
  /** The first wait after a transient answer; each further one of the same request doubles. **Default:** 500 ms. */
  firstRetryDelayInMs?: number;
  /** The longest wait between two tries, unless the gateway's `Retry-After` asks for longer. **Default:** 8000 ms. */
  maxRetryDelayInMs?: number;
}

/** What a task needs of the storefront: a call to the gateway with its token. */
export type GatewayCaller = Pick<StorefrontCaller, 'fetch'>;

/** The progress calls a task makes. */
export type TaskProgress = Pick<Progress, 'step' | 'count' | 'done' | 'line'>;

/** How the lines of {@link callPatiently} name its task. */
export interface PatientTask {
  /** The task as the subject of "… gives up after N s more of such answers": `the load`. */
  name: string;
  /** What to do once the cause is fixed, after "then": ``run `npm start` again``. */
  rerun: string;
  /** The folder of the services' logs, as the failure names it: `/…/.local-azure/logs`. */
  logs: string;
}

/** Statuses a gateway answers while its services catch up (503 unavailable, 504 a service did not answer in time). */
const transientStatuses = new Set([503, 504]);
/** Connection errors while the gateway (re)starts: nothing listening yet, or the connection dropped. */
const transientErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * Runs `work` with a gateway caller that waits out transient failures within bounds (see {@link PatientGatewayOptions}
 * and the rules of the caller below), a progress that prints nothing once the task is stopped, and the task's signal.
 *
 * Rules:
 * - `options.signal` aborted before the start: rejects with its reason, calling nothing.
 * - Aborted while running: rejects at once with the signal's reason, whatever a request was doing; nothing more is
 *   printed, and no request is sent or retried after it.
 * - When `work` settles (one request failed for good, say), the other requests still waiting to try again end too.
 *
 * @example
 * await callPatiently(storefront, progress, { signal }, { name: 'the load', rerun: 'run `npm start` again', logs: '.local-azure/logs' }, (gateway, shown) =>
 *   gateway.fetch('/v1/products/lantern', { method: 'PUT', body }).then(() => shown.line('sent')),
 * );
 */
export async function callPatiently<T>(
  storefront: GatewayCaller,
  progress: Progress,
  options: PatientGatewayOptions,
  task: PatientTask,
  work: (gateway: GatewayCaller, progress: TaskProgress, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  options.signal?.throwIfAborted();
  // The task's own signal: the caller's abort ends it, and so does the task's end, so that when one request fails the
  // others (still waiting to try again) neither go on nor print.
  const running = new AbortController();
  const abortTask = (): void => running.abort(options.signal!.reason);
  options.signal?.addEventListener('abort', abortTask, { once: true });
  try {
    const shown = quietOnceAborted(progress, running.signal);
    return await work(new PatientGateway(storefront, shown, running.signal, options, task), shown, running.signal);
  } catch (error) {
    // Whatever a request was doing when the caller aborted, the abort is the reason the task ended.
    options.signal?.throwIfAborted();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', abortTask);
    running.abort(new Error(`${task.name} ended`));
  }
}

/** `progress`, with every call dropped once `signal` aborts: a load that was stopped prints nothing more. */
function quietOnceAborted(progress: Progress, signal: AbortSignal): TaskProgress {
  const unlessAborted =
    <A extends unknown[]>(show: (...args: A) => void) =>
    (...args: A): void => {
      if (!signal.aborted) show(...args);
    };
  return {
    step: unlessAborted(progress.step.bind(progress)),
    count: unlessAborted(progress.count.bind(progress)),
    done: unlessAborted(progress.done.bind(progress)),
    line: unlessAborted(progress.line.bind(progress)),
  };
}

/** Why a try is worth another one. */
interface TransientFailure {
  /** What happened, for the user: `answered 504 (…)`, `failed with ECONNREFUSED`. */
  what: string;
  /** The wait the gateway asked for with `Retry-After`, if it did. */
  retryAfterInMs?: number;
}

/**
 * The storefront's calls to the gateway, with transient failures waited out.
 *
 * Rules:
 * - 503, 504 and a refused or reset connection are tried again after a wait that doubles from `firstRetryDelayInMs`
 *   up to `maxRetryDelayInMs`, or after the answer's `Retry-After` when it sends one.
 * - A request is tried at most `maxAttempts` times; and once the gateway has answered only transient failures, to all
 *   the concurrent calls, for `maxRetryTimeInMs`, the next one fails. A wait never runs past that time. The error
 *   says what failed, how often, and what to do.
 * - While waiting, a line says which request is retried, why, and when; at most one every `noticeIntervalInMs`.
 * - Any other answer (a 4xx included) is returned as it is.
 * - When `signal` aborts, the call in flight or the wait ends at once, rejecting with the signal's reason, and nothing
 *   more is printed.
 */
class PatientGateway implements GatewayCaller {
  private readonly maxRetryTimeInMs: number;
  private readonly maxAttempts: number;
  private readonly firstDelayInMs: number;
  private readonly maxDelayInMs: number;
  /** When the current run of transient failures began (undefined while the gateway answers). */
  private failingSince: number | undefined;
  private lastNoticeAt = -Infinity;

  constructor(
    private readonly storefront: GatewayCaller,
    private readonly progress: TaskProgress,
    private readonly signal: AbortSignal,
    options: PatientGatewayOptions,
    private readonly task: PatientTask,
  ) {
    this.maxRetryTimeInMs = options.maxRetryTimeInMs ?? defaults.maxRetryTimeInMs;
    this.maxAttempts = options.maxAttempts ?? defaults.maxAttempts;
    this.firstDelayInMs = options.firstRetryDelayInMs ?? defaults.firstRetryDelayInMs;
    this.maxDelayInMs = options.maxRetryDelayInMs ?? defaults.maxRetryDelayInMs;
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const request = `${init.method ?? 'GET'} ${path}`;
    const firstTryAt = performance.now();
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.try(path, init);
      if (outcome instanceof Response) {
        this.failingSince = undefined;
        return outcome;
      }
      const now = performance.now();
      this.failingSince ??= now;
      const leftInMs = this.maxRetryTimeInMs - (now - this.failingSince);
      if (attempt >= this.maxAttempts || leftInMs <= 0) {
        throw new Error(
          `The gateway still ${outcome.what} to ${request} after ${attempt} ${attempt === 1 ? 'try' : 'tries'} in ${Math.round((now - firstTryAt) / 1000)} s: ` +
            `its services did not catch up.\nIf it keeps failing, check the logs of the gateway, recommendation and vision in ${this.task.logs} ` +
            `and that the machine is not short of memory or CPU, then ${this.task.rerun}.`,
        );
      }
      const delayInMs = Math.min(outcome.retryAfterInMs ?? Math.min(this.firstDelayInMs * 2 ** (attempt - 1), this.maxDelayInMs), leftInMs);
      if (now - this.lastNoticeAt >= defaults.noticeIntervalInMs) {
        this.lastNoticeAt = now;
        this.progress.line(
          `  The gateway ${outcome.what} to ${request} (its services are still catching up): trying again in ${(delayInMs / 1000).toFixed(1)} s ` +
            `(try ${attempt + 1} of at most ${this.maxAttempts}; ${this.task.name} gives up after ${Math.ceil(leftInMs / 1000)} s more of such answers).`,
        );
      }
      await pause(delayInMs, this.signal);
    }
  }

  /** One try: the gateway's answer, or why it is worth another try. Rejects at once with the reason when aborted. */
  private async try(path: string, init: RequestInit): Promise<Response | TransientFailure> {
    try {
      // The race ends the try on an abort even while the token is fetched, which the signal does not reach.
      const response = await untilAborted(this.storefront.fetch(path, { ...init, signal: this.signal }), this.signal);
      if (!transientStatuses.has(response.status)) return response;
      const retryAfter = retryAfterInMs(response.headers.get('retry-after'));
      const detail = await problemDetail(response);
      return { what: `answered ${response.status}${detail ? ` (${detail})` : ''}`, ...(retryAfter === undefined ? {} : { retryAfterInMs: retryAfter }) };
    } catch (error) {
      this.signal.throwIfAborted();
      const code = transientErrorCode(error);
      if (!code) throw error;
      return { what: `failed with ${code}` };
    }
  }
}

/** `work`, or the abort of `signal` (rejecting with its reason), whichever comes first. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Waits `delayInMs`; an abort of `signal` ends the wait at once, rejecting with its reason. */
async function pause(delayInMs: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(delayInMs, undefined, { signal });
  } catch (error) {
    signal.throwIfAborted();
    throw error;
  }
}

/** The `detail` of a problem-details answer (what the gateway says went wrong), or undefined. */
async function problemDetail(response: Response): Promise<string | undefined> {
  const text = await response.text();
  if (!response.headers.get('content-type')?.includes('json')) return undefined;
  try {
    const { detail } = JSON.parse(text) as { detail?: unknown };
    return typeof detail === 'string' && detail ? detail : undefined;
  } catch {
    return undefined;
  }
}

/** The code of a connection error worth retrying (fetch wraps it as its `cause`), else undefined. */
function transientErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 4; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && transientErrorCodes.has(code)) return code;
  }
  return undefined;
}
