import type { DemoProduct } from './demo-catalog.js';
import { waitFor } from '../processes.js';
import { Progress, silent } from '../progress.js';
import type { StorefrontCaller } from '../storefront-caller.js';

const defaults = {
  /** Concurrent requests while loading the catalog and polling its indexing. */
  concurrency: 8,
  indexingTimeoutInMs: 300_000,
  /**
   * How long the gateway may keep answering only 503/504 (or refusing connections) before the load gives up. A slow
   * laptop sees these while the services are still catching up after a start: the gateway answers 504 once a
   * request has waited its REQUEST_TIMEOUT_MS (10 s by default) for a service.
   */
  transientBudgetInMs: 180_000,
  /** The first wait after a transient answer; each further one doubles, up to `maxRetryDelayInMs`. */
  firstRetryDelayInMs: 500,
  maxRetryDelayInMs: 8_000,
  /** How often a wait for the gateway is reported, so a long one is not silent. */
  noticeIntervalInMs: 5_000,
};

/** How {@link loadCatalog} waits out a gateway that is still catching up. */
export interface GatewayRetryOptions {
  /** How long only transient answers (503, 504, a refused or reset connection) are waited out. **Default:** 180 000 ms. */
  transientBudgetInMs?: number;
  /** The first wait after a transient answer; each further one doubles. **Default:** 500 ms. */
  firstRetryDelayInMs?: number;
  /** The longest wait between two tries (a `Retry-After` the gateway sends wins). **Default:** 8000 ms. */
  maxRetryDelayInMs?: number;
}

/** What the loader needs of the storefront: a call to the gateway with its token. */
export type GatewayCaller = Pick<StorefrontCaller, 'fetch'>;

/** Statuses a gateway answers while its services catch up (503 unavailable, 504 a service did not answer in time). */
const transientStatuses = new Set([503, 504]);
/** Connection errors while the gateway (re)starts: nothing listening yet, or the connection dropped. */
const transientErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * Loads the demo catalog through the gateway, then waits until every product is indexed, showing progress
 * for both. A second start finds the products there and only re-sends those that are not indexed (an
 * upsert nudges vision and recommendation again), so it is quick.
 */
export async function loadCatalog(
  storefront: GatewayCaller,
  catalog: readonly DemoProduct[],
  progress: Progress = new Progress(silent),
  options: GatewayRetryOptions = {},
): Promise<void> {
  const gateway = new PatientGateway(storefront, progress, options);
  const states = new Map<string, string>();
  await inBatches(catalog, defaults.concurrency, async ({ product }) => {
    states.set(product.id, await indexingState(gateway, product.id));
  });
  const toSend = catalog.filter(({ product }) => states.get(product.id) !== 'indexed');
  if (toSend.length === 0) {
    progress.line(`Demo catalog loaded and indexed (${catalog.length} products).`);
    return;
  }
  let sent = 0;
  progress.step(toSend.length === catalog.length ? `Loading the demo catalog (${catalog.length} products)` : `Re-sending ${toSend.length} products that are not indexed yet`);
  await inBatches(toSend, defaults.concurrency, async ({ product }) => {
    const { id, ...body } = product;
    // An upsert: sending it again after a 504 is safe.
    const response = await gateway.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
    if (response.status !== 202) throw new Error(await unexpectedAnswer(`PUT /v1/products/${id}`, response));
    progress.count(++sent, toSend.length);
  });
  progress.done();

  progress.step('Indexing (vision tags, embeddings)');
  const pending = new Set(toSend.map(({ product }) => product.id));
  let failed = 0;
  await waitFor(
    async () => {
      await inBatches([...pending], defaults.concurrency, async (id) => {
        const state = await indexingState(gateway, id);
        if (state === 'indexed' || state === 'failed') {
          pending.delete(id);
          if (state === 'failed') failed++;
        }
      });
      progress.count(toSend.length - pending.size, toSend.length);
      return pending.size === 0;
    },
    defaults.indexingTimeoutInMs,
    () => `${pending.size} products were still not indexed after ${defaults.indexingTimeoutInMs / 1000} s (see the logs in LOCAL_AZURE_HOME/logs)`,
    2000,
  );
  progress.done(failed ? `${failed} failed` : undefined);
}

/** A product's indexing state through the gateway, or `missing`. */
export async function indexingState(storefront: GatewayCaller, id: string): Promise<string> {
  const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`);
  if (response.status === 404) return 'missing';
  if (response.status !== 200) throw new Error(await unexpectedAnswer(`GET /v1/products/${id}`, response));
  return ((await response.json()) as { indexing: { state: string } }).indexing.state;
}

async function unexpectedAnswer(request: string, response: Response): Promise<string> {
  return `${request} answered ${response.status}: ${await response.text()}\nCheck the gateway's log in LOCAL_AZURE_HOME/logs, then run \`npm start\` again.`;
}

/**
 * The storefront's calls to the gateway, with transient answers waited out.
 *
 * Rules:
 * - 503, 504 and a refused or reset connection are tried again after a wait that doubles from `firstRetryDelayInMs`
 *   up to `maxRetryDelayInMs`, or after the answer's `Retry-After` (seconds) when it sends one.
 * - The budget is shared by all concurrent calls and counts from the first transient answer since the last other one;
 *   once it is spent, the call fails with what was waited for and what to check.
 * - While waiting, a line says what for, at most every `noticeIntervalInMs`.
 * - Any other answer (including 4xx) is returned as it is.
 */
class PatientGateway implements GatewayCaller {
  private readonly budgetInMs: number;
  private readonly firstDelayInMs: number;
  private readonly maxDelayInMs: number;
  /** When the current run of transient answers began (undefined while the gateway answers). */
  private waitingSince: number | undefined;
  private lastNoticeAt = 0;

  constructor(
    private readonly storefront: GatewayCaller,
    private readonly progress: Progress,
    options: GatewayRetryOptions,
  ) {
    this.budgetInMs = options.transientBudgetInMs ?? defaults.transientBudgetInMs;
    this.firstDelayInMs = options.firstRetryDelayInMs ?? defaults.firstRetryDelayInMs;
    this.maxDelayInMs = options.maxRetryDelayInMs ?? defaults.maxRetryDelayInMs;
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const request = `${init.method ?? 'GET'} ${path}`;
    for (let attempt = 0; ; attempt++) {
      let transient: { what: string; retryAfterInMs?: number };
      try {
        const response = await this.storefront.fetch(path, init);
        if (!transientStatuses.has(response.status)) {
          this.waitingSince = undefined;
          return response;
        }
        const retryAfter = retryAfterInMs(response.headers.get('retry-after'));
        await response.arrayBuffer();
        transient = { what: `answered ${response.status}`, ...(retryAfter === undefined ? {} : { retryAfterInMs: retryAfter }) };
      } catch (error) {
        const code = transientErrorCode(error);
        if (!code) throw error;
        transient = { what: `failed with ${code}` };
      }
      const now = Date.now();
      this.waitingSince ??= now;
      const spent = now - this.waitingSince;
      if (spent >= this.budgetInMs) {
        throw new Error(
          `The gateway still ${transient.what} to ${request} after ${Math.round(spent / 1000)} s of retries: its services did not catch up.\n` +
            `Check the logs in LOCAL_AZURE_HOME/logs (gateway, recommendation, vision) and that the machine is not short of memory or CPU, then run \`npm start\` again.`,
        );
      }
      const delay = Math.min(transient.retryAfterInMs ?? Math.min(this.firstDelayInMs * 2 ** attempt, this.maxDelayInMs), this.budgetInMs - spent);
      if (now - this.lastNoticeAt >= defaults.noticeIntervalInMs) {
        this.lastNoticeAt = now;
        this.progress.line(
          `  waiting for the gateway's services to catch up: ${request} ${transient.what}; trying again in ${(delay / 1000).toFixed(1)} s (giving up after ${Math.round((this.budgetInMs - spent) / 1000)} s more)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
function retryAfterInMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The code of a connection error worth retrying (fetch wraps it as its `cause`), else undefined. */
function transientErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 4; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && transientErrorCodes.has(code)) return code;
  }
  return undefined;
}

export async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

