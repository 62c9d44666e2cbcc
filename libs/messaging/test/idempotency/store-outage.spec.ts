import { Controller } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { postgresDataPlane } from '@keyless/local-azure';
import { TcpGate, TestMetrics } from '@keyless/local-azure/testing';
import { idempotencySchema, OnEvent, OnRequest, PostgresIdempotencyStore, type MessagingClient } from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';
import { rejectionOf, waitFor } from '../support/wait-for.js';

const handled: string[] = [];

@Controller()
class Handlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    handled.push(id);
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>): void {
    handled.push(product.id);
  }
}

// The service's connections to the shared idempotency table go through a gate the test cuts: the database is lost
// mid-run and comes back, while Service Bus stays up. Host "recommendation".
describe('A service whose idempotency store becomes unreachable', () => {
  let bus: TestBus;
  let gate: TcpGate;
  let database: TestDatabase;
  let service: TestService;
  let requester: { messaging: MessagingClient; close(): Promise<void> };
  const metrics = new TestMetrics();

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation', dataPlanes: [postgresDataPlane], topology: { lockDuration: 'PT5S' } });
    gate = await TcpGate.open({ host: '127.0.0.1', port: Number(bus.env.PGPORT) });
    database = await openTestDatabase(bus.env, { schemas: [idempotencySchema], pool: { host: '127.0.0.1', port: gate.port } });
    service = await startService({
      client: bus.client(),
      controllers: [Handlers],
      server: {
        requests: { queue: queues.recommendationRequests },
        events: [{ topic: topics.events, subscription: subscriptions.recommendation }],
        idempotencyStore: new PostgresIdempotencyStore(database.pool),
        settlement: { initialBackoffInMs: 200, maxAttempts: 10 },
        meterProvider: metrics.provider,
      },
    });
    const started = await startRequester({ client: bus.client(), proxy: { replyQueue: queues.replies, instanceId: 'gateway-outage', requestTimeoutInMs: 15_000 } });
    requester = { messaging: started.messaging, close: () => started.app.close() };
  }, 120_000);
  afterAll(async () => {
    await gate?.restore();
    await requester?.close();
    await service?.app.close();
    await database?.close();
    await gate?.close();
    await bus?.stop();
  });

  it('answers requests dependency-unavailable at once while the store is unreachable, and normally once it is back', async () => {
    await gate.cut();
    // An answer, not the requester's timeout (RequestTimeoutError after 15 s).
    const error = await rejectionOf(requester.messaging.request('recommendation.get-product', { id: 'during-outage' }));
    expect(error).toBeInstanceOf(RpcException);
    expect((error as RpcException).getError()).toMatchObject({ code: 'dependency-unavailable' });
    expect(handled).not.toContain('during-outage');

    await gate.restore();
    await expect(requester.messaging.request('recommendation.get-product', { id: 'after-outage' })).resolves.toMatchObject({ product: { id: 'after-outage' } });
  }, 30_000);

  it('retries an event until the store is back, then handles it once', async () => {
    await gate.cut();
    await requester.messaging.publish('catalog.product.upserted', { product: testProduct('event-during-outage'), upsertedAt: new Date().toISOString() });
    // Delivered and refused (to be retried): nothing runs without the store.
    await waitFor('a failed delivery', async () => (await metrics.sum('messaging.messages.failed', { pattern: 'catalog.product.upserted' })) >= 1, 15_000);
    expect(handled).not.toContain('event-during-outage');
    await gate.restore();
    await waitFor('the event to be handled', () => handled.includes('event-during-outage'), 20_000);
    expect(handled.filter((id) => id === 'event-during-outage')).toHaveLength(1);
  }, 30_000);
});
