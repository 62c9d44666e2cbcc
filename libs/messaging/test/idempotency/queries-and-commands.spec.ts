import { Controller } from '@nestjs/common';
import { queues, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { OnRequest, type ClaimOptions, type IdempotencyClaim, type IdempotencyRecord, type MessagingClient } from '../../src/index.js';
import { MemoryIdempotencyStore } from '../../src/testing/index.js';
import { sendCopies, startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';

/** Handler runs, by product id. */
const runs = new Map<string, number>();
const count = (id: string): void => void runs.set(id, (runs.get(id) ?? 0) + 1);

@Controller()
class Handlers {
  /** A query: it reads and answers. */
  @OnRequest('recommendation.similar-products', { sideEffects: false })
  similar({ productId }: ParsedRequestOf<'recommendation.similar-products'>): ReplyOf<'recommendation.similar-products'> {
    count(productId);
    return { items: [{ product: testProduct(`${productId}-twin`), score: 0.9 }], explanation: `like ${productId}` };
  }

  /** Treated as a command (the default): its effect must happen once. */
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    count(id);
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }
}

/** The in-memory store with every call written down (method and key). */
class RecordingIdempotencyStore extends MemoryIdempotencyStore {
  readonly calls: { method: string; key: string }[] = [];

  override claim(key: string, owner: string, options: ClaimOptions): Promise<IdempotencyClaim> {
    this.calls.push({ method: 'claim', key });
    return super.claim(key, owner, options);
  }

  override complete(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    this.calls.push({ method: 'complete', key });
    return super.complete(key, record, ttlInMs);
  }

  /** The calls about one message id. */
  callsFor(messageId: string): string[] {
    return this.calls.filter((call) => call.key.endsWith(`:${messageId}`)).map((call) => call.method);
  }
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('Queries and commands: which requests go through the idempotency store (host "gateway")', () => {
  let bus: TestBus;
  let service: TestService;
  let requester: { messaging: MessagingClient; close(): Promise<void> };
  const store = new RecordingIdempotencyStore();

  beforeAll(async () => {
    bus = await startTestBus();
    service = await startService({ client: bus.client(), controllers: [Handlers], server: { requests: { queue: queues.recommendationRequests }, idempotencyStore: store } });
    const started = await startRequester({ client: bus.client(), proxy: { replyQueue: queues.replies, instanceId: 'gateway-queries', requestTimeoutInMs: 10_000 } });
    requester = { messaging: started.messaging, close: () => started.app.close() };
  });
  afterAll(async () => {
    await requester?.close();
    await service?.app.close();
    await bus?.stop();
  });

  describe('when the handler declares no side effects', () => {
    it('answers the request without calling the store', async () => {
      const reply = await requester.messaging.request('recommendation.similar-products', { productId: 'query-1', limit: 5, filters: {} });
      expect(reply).toEqual({ items: [{ product: testProduct('query-1-twin'), score: 0.9 }], explanation: 'like query-1' });
      expect(runs.get('query-1')).toBe(1);
      expect(store.calls).toEqual([]);
    });

    it('answers each copy of a request by running the handler again', async () => {
      const { messageId, replies } = await sendCopies(bus.client(), 'recommendation.similar-products', { productId: 'query-copies', limit: 5, filters: {} }, 2);
      expect(replies.map((r) => [r.correlationId, r.body])).toEqual([
        [messageId, { ok: true, data: { items: [{ product: testProduct('query-copies-twin'), score: 0.9 }], explanation: 'like query-copies' } }],
        [messageId, { ok: true, data: { items: [{ product: testProduct('query-copies-twin'), score: 0.9 }], explanation: 'like query-copies' } }],
      ]);
      expect(runs.get('query-copies')).toBe(2);
      expect(store.callsFor(messageId)).toEqual([]);
    });
  });

  describe('when the handler keeps the default (a command)', () => {
    it('runs the handler once for copies of a request and answers the copy from the store', async () => {
      const { messageId, replies } = await sendCopies(bus.client(), 'recommendation.get-product', { id: 'command-copies' }, 2);
      expect(replies.map((r) => r.correlationId)).toEqual([messageId, messageId]);
      expect(replies[1]!.body).toEqual(replies[0]!.body);
      expect(replies[0]!.body).toMatchObject({ ok: true, data: { product: { id: 'command-copies' } } });
      expect(runs.get('command-copies')).toBe(1);
      expect(store.callsFor(messageId)).toEqual(['claim', 'complete', 'claim']);
    });
  });
});
