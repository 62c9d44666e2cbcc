import { isSuccess, type CallResult, type GatewayClient } from './gateway-client.js';
import type { ImageServer } from './image-server.js';
import type { Ledger, Phase } from './ledger.js';

/** Which scenario runs and in which phase it is: every record is tagged with it. */
export interface PhaseClock {
  scenario: string;
  phase: Phase;
}

/** The kinds of request the load sends, each through a different path of the system. */
export const requestKinds = ['get-product', 'similar', 'recommend', 'analyze'] as const;
export type RequestKind = (typeof requestKinds)[number];

/** One request of the load. */
export interface RequestRecord {
  /** When it was sent (ms since the epoch). */
  at: number;
  kind: RequestKind;
  status: CallResult['status'];
  ms: number;
  scenario: string;
  phase: Phase;
}

/** Products the requests read (indexed before the load starts) and the image the analyses fetch. */
export interface LoadTargets {
  productIds: readonly string[];
  imageUrl: string;
}

/** Options of {@link RequestLoad} and {@link EventStream}. */
export interface LoadOptions {
  /** Requests (or upserts) in flight at once. */
  concurrency: number;
  /** Pause of each worker between two of its calls, in ms. */
  pauseInMs: number;
}

/** `concurrency` workers, each repeating {@link once} with a pause, from {@link start} until {@link stop}. */
abstract class Workers {
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly options: LoadOptions) {}

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: this.options.concurrency }, async () => {
      while (this.running) {
        await this.once();
        await pause(this.options.pauseInMs);
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  protected abstract once(): Promise<void>;
}

/**
 * A steady load of requests through the gateway, cycling through the kinds: a product read (gateway → bus →
 * recommendation), similar products (+ Azure OpenAI chat), a shopper query (+ embeddings) and an image analysis
 * (gateway → bus → vision → Azure AI Vision). Runs until stopped; every result is recorded with its phase.
 */
export class RequestLoad extends Workers {
  readonly records: RequestRecord[] = [];
  private next = 0;

  constructor(
    private readonly client: GatewayClient,
    private readonly targets: LoadTargets,
    private readonly clock: PhaseClock,
    options: LoadOptions,
  ) {
    super(options);
  }

  /** Sends one request of `kind` now (probes use it too). */
  send(kind: RequestKind, n = this.next): Promise<CallResult> {
    const id = this.targets.productIds[n % this.targets.productIds.length]!;
    switch (kind) {
      case 'get-product':
        return this.client.call('GET', `/v1/products/${id}`);
      case 'similar':
        return this.client.call('GET', `/v1/products/${id}/similar?limit=3`);
      case 'recommend':
        return this.client.call('POST', '/v1/recommendations', { query: 'a light running shoe', limit: 3 });
      case 'analyze':
        return this.client.call('POST', '/v1/images:analyze', { url: this.targets.imageUrl });
    }
  }

  protected async once(): Promise<void> {
    const n = this.next++;
    const kind = requestKinds[n % requestKinds.length]!;
    const { scenario, phase } = this.clock;
    const at = Date.now();
    const result = await this.send(kind, n);
    this.records.push({ at, kind, status: result.status, ms: result.ms, scenario, phase });
  }
}

/**
 * A steady stream of catalog upserts through the gateway (`PUT /v1/products/{id}` → `catalog.product.upserted`),
 * every one in the ledger: half with an image of their own (vision analyses it, then recommendation embeds the
 * product), half without (recommendation embeds it at once).
 */
export class EventStream extends Workers {
  private sent = 0;

  constructor(
    private readonly client: GatewayClient,
    private readonly ledger: Ledger,
    private readonly images: ImageServer,
    private readonly clock: PhaseClock,
    options: LoadOptions,
  ) {
    super(options);
  }

  /** Sends one upsert now and records it; resolves with whether it was acknowledged. */
  async upsert(withImage: boolean): Promise<boolean> {
    const entry = this.ledger.open(this.clock.scenario, this.clock.phase, withImage);
    const body = {
      name: entry.name,
      description: `Sent by the chaos suite during ${entry.scenario} (${entry.phase}).`,
      category: 'shoes',
      price: 10 + (entry.seq % 100),
      ...(withImage ? { imageUrl: this.images.url(entry.productId) } : {}),
    };
    const result = await this.client.call('PUT', `/v1/products/${entry.productId}`, body);
    const eventId = (result.body as { eventId?: unknown } | undefined)?.eventId;
    if (result.status === 202 && typeof eventId === 'string') {
      this.ledger.acknowledge(entry, eventId);
      return true;
    }
    this.ledger.refuse(entry, result.status === 'timeout' ? 'network-error' : result.status);
    return false;
  }

  protected async once(): Promise<void> {
    await this.upsert(this.sent++ % 2 === 0);
  }

  /**
   * Sends `count` upserts with `concurrency` workers (on top of the steady stream); `onProgress` hears the number
   * sent so far after each one. Resolves when all were answered.
   */
  async burst(count: number, concurrency: number, onProgress: (sent: number) => void = () => undefined): Promise<void> {
    let next = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const n = next++;
          await this.upsert(n % 2 === 0);
          onProgress(++done);
        }
      }),
    );
  }
}

/**
 * Recovery after a heal: the time from `healedAt` to the first request of the first run of `runLength`
 * consecutive successes (in sending order, requests sent at or after the heal) that includes every kind;
 * `undefined` if there is none yet.
 */
export function requestRecoveryInMs(records: readonly Pick<RequestRecord, 'at' | 'kind' | 'status'>[], healedAt: number, runLength = 2 * requestKinds.length): number | undefined {
  const after = records.filter((r) => r.at >= healedAt).sort((a, b) => a.at - b.at);
  let start = 0;
  for (let i = 0; i < after.length; i++) {
    if (!isSuccess(after[i]!.status)) {
      start = i + 1;
      continue;
    }
    const run = after.slice(start, i + 1);
    if (run.length >= runLength && requestKinds.every((kind) => run.some((r) => r.kind === kind))) return after[start]!.at - healedAt;
  }
  return undefined;
}

/** Requests by status, e.g. `{ "200": 310, "503": 12 }`. */
export function countByStatus(records: readonly Pick<RequestRecord, 'status'>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { status } of records) counts[String(status)] = (counts[String(status)] ?? 0) + 1;
  return counts;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
