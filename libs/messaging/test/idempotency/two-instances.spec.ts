import { Controller } from '@nestjs/common';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { postgresDataPlane } from '@keyless/local-azure';
import { TestMetrics } from '@keyless/local-azure/testing';
import {
  idempotencySchema,
  OnEvent,
  OnRequest,
  PostgresIdempotencyStore,
  ServiceBusRecordBuilder,
  type ClaimOptions,
  type IdempotencyClaim,
  type IdempotencyRecord,
  type IdempotencyStore,
  type MessagingClient,
} from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { entityCounts, startTestBus, type TestBus } from '../support/test-bus.js';
import { waitFor } from '../support/wait-for.js';

/** The PostgreSQL store, with the answers of its claims kept for the test to see. */
class ObservedStore implements IdempotencyStore {
  readonly claims: IdempotencyClaim[] = [];
  constructor(private readonly store: IdempotencyStore) {}
  async claim(key: string, owner: string, options: ClaimOptions): Promise<IdempotencyClaim> {
    const claim = await this.store.claim(key, owner, options);
    this.claims.push(claim);
    return claim;
  }
  renew(key: string, owner: string, leaseInMs: number): Promise<boolean> {
    return this.store.renew(key, owner, leaseInMs);
  }
  complete(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    return this.store.complete(key, record, ttlInMs);
  }
  release(key: string, owner: string): Promise<void> {
    return this.store.release(key, owner);
  }
}

/** Which instance ran a handler, per product id. */
const runs: { id: string; by: string }[] = [];
/** Handlers of "slow-…" products wait for this. */
let release: () => void = () => undefined;
let gate = new Promise<void>((resolve) => (release = resolve));

function handlers(instance: string): new () => object {
  @Controller()
  class CountingHandlers {
    @OnRequest('recommendation.get-product')
    async getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): Promise<ReplyOf<'recommendation.get-product'>> {
      runs.push({ id, by: instance });
      if (id.startsWith('slow')) await gate;
      return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
    }

    @OnEvent('catalog.product.upserted')
    async upserted({ product }: EventOf<'catalog.product.upserted'>): Promise<void> {
      runs.push({ id: product.id, by: instance });
      if (product.id.startsWith('slow')) await gate;
    }
  }
  return CountingHandlers;
}

// Two instances of a service (two Nest apps, each with its own pool: its own connections to the shared table) on the
// local Service Bus and the local Azure's PostgreSQL, host "recommendation".
describe('The idempotency guard across two instances of a service', () => {
  let bus: TestBus;
  const databases: TestDatabase[] = [];
  const services: TestService[] = [];
  const requesters: { messaging: MessagingClient; close(): Promise<void> }[] = [];

  async function startInstance(name: string, options: { metrics?: TestMetrics; maxAutoLockRenewalDurationInMs?: number; store?: (store: IdempotencyStore) => IdempotencyStore } = {}): Promise<TestService> {
    const database = await openTestDatabase(bus.env, { schemas: [idempotencySchema] });
    databases.push(database);
    const store = new PostgresIdempotencyStore(database.pool);
    const service = await startService({
      client: bus.client(),
      controllers: [handlers(name)],
      server: {
        instanceId: name,
        requests: { queue: queues.recommendationRequests, maxConcurrentCalls: 1 },
        events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: 1 }],
        idempotencyStore: options.store ? options.store(store) : store,
        settlement: { initialBackoffInMs: 200, maxAttempts: 10 },
        ...(options.metrics ? { meterProvider: options.metrics.provider } : {}),
        ...(options.maxAutoLockRenewalDurationInMs !== undefined ? { maxAutoLockRenewalDurationInMs: options.maxAutoLockRenewalDurationInMs } : {}),
      },
    });
    services.push(service);
    return service;
  }

  async function requester(instanceId: string): Promise<MessagingClient> {
    const started = await startRequester({ client: bus.client(), proxy: { replyQueue: queues.replies, instanceId, requestTimeoutInMs: 30_000 } });
    requesters.push({ messaging: started.messaging, close: () => started.app.close() });
    return started.messaging;
  }

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation', dataPlanes: [postgresDataPlane], topology: { lockDuration: 'PT5S', maxDeliveryCount: 10 } });
  }, 120_000);
  afterEach(async () => {
    release();
    // Each test starts its own instances: the next test's messages must not go to these.
    await Promise.all(services.splice(0).map((s) => s.app.close().catch(() => undefined)));
    gate = new Promise<void>((resolve) => (release = resolve));
  });
  afterAll(async () => {
    await Promise.all(requesters.map((r) => r.close().catch(() => undefined)));
    await Promise.all(databases.map((d) => d.close()));
    await bus?.stop();
  });

  it('answers a copy of a request that reaches the other instance with the first reply, running the handler once', async () => {
    await Promise.all([startInstance('instance-a'), requester('gateway-1'), requester('gateway-2')]);
    const copy = (messaging: MessagingClient) => messaging.request('recommendation.get-product', new ServiceBusRecordBuilder({ id: 'slow-request' }).setMessageId('copy-of-slow-request').build());
    const first = copy(requesters[0]!.messaging);
    await waitFor('instance-a to run the handler', () => runs.some((r) => r.id === 'slow-request'));
    // instance-a is busy (one call at a time), so the copy goes to instance-b, which finds it running there and waits.
    await startInstance('instance-b');
    const second = copy(requesters[1]!.messaging);
    await waitFor('the copy to be locked by instance-b', async () => (await entityCounts(bus, queues.recommendationRequests)).locked === 2);
    release();
    const [one, two] = await Promise.all([first, second]);
    expect(two).toEqual(one);
    expect(runs.filter((r) => r.id === 'slow-request')).toEqual([{ id: 'slow-request', by: 'instance-a' }]);
  }, 60_000);

  it('never applies an event twice: a copy that reaches the other instance while the first runs waits for it', async () => {
    const metrics = new TestMetrics();
    // Without lock renewal, the broker redelivers the event while instance-c still runs it.
    await startInstance('instance-c', { maxAutoLockRenewalDurationInMs: 0 });
    const publisher = requesters[0]?.messaging ?? (await requester('gateway-3'));
    await publisher.publish('catalog.product.upserted', new ServiceBusRecordBuilder({ product: testProduct('slow-event'), upsertedAt: new Date().toISOString() }).setMessageId('slow-event-1').build());
    await waitFor('instance-c to run the handler', () => runs.some((r) => r.id === 'slow-event'));
    let observed: ObservedStore | undefined;
    await startInstance('instance-d', { metrics, store: (store) => (observed = new ObservedStore(store)) });
    await waitFor('the copy to find the event running at instance-c', () => observed!.claims.some((c) => c.status === 'running' && c.owner === 'instance-c'), 20_000);
    release();
    const subscription = `${topics.events}/Subscriptions/${subscriptions.recommendation}`;
    await waitFor('the subscription to be empty', async () => {
      const counts = await entityCounts(bus, subscription);
      return counts.active + counts.locked === 0 && counts.deadLetter === 0;
    }, 30_000);
    expect(runs.filter((r) => r.id === 'slow-event')).toEqual([{ id: 'slow-event', by: 'instance-c' }]);
    // The copy was completed at instance-d once instance-c was done, not retried.
    expect(observed!.claims.at(-1)).toMatchObject({ status: 'done' });
    expect(await metrics.sum('messaging.messages.handled', { pattern: 'catalog.product.upserted' })).toBe(1);
    expect(await metrics.sum('messaging.messages.failed', { pattern: 'catalog.product.upserted' })).toBe(0);
  }, 60_000);
});
