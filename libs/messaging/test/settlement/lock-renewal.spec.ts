import { Controller } from '@nestjs/common';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { OnEvent, OnRequest, ServiceBusContext, type MessagingClient } from '../../src/index.js';
import { startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { entityCounts, startTestBus, type TestBus } from '../support/test-bus.js';

const runs = new Map<string, number>();
const outlived = new Map<string, { lockedUntil: number; finishedAt: number }>();

/**
 * Works until the message's first lock has expired (plus a margin) and the SDK renewed it at least once,
 * whatever the lock duration: a handler longer than the entity's lock, by construction.
 */
async function outliveFirstLock(id: string, context: ServiceBusContext): Promise<void> {
  runs.set(id, (runs.get(id) ?? 0) + 1);
  const message = context.getMessage();
  const firstLockedUntil = message.lockedUntilUtc!.getTime();
  await waitFor(`the lock of ${id} to be renewed past its first expiry`, () => message.lockedUntilUtc!.getTime() > firstLockedUntil && Date.now() > firstLockedUntil + 1_000, 20_000);
  outlived.set(id, { lockedUntil: firstLockedUntil, finishedAt: Date.now() });
}

@Controller()
class SlowHandlers {
  @OnRequest('recommendation.get-product')
  async getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>, context: ServiceBusContext): Promise<ReplyOf<'recommendation.get-product'>> {
    await outliveFirstLock(id, context);
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  async upserted({ product }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): Promise<void> {
    await outliveFirstLock(product.id, context);
  }
}

// The entities' lock duration is 5 s (the broker's minimum) in this file's topology.
describe('Handlers that run longer than the lock duration, on the local Service Bus (host "recommendation")', () => {
  let bus: TestBus;
  let service: TestService;
  let messaging: MessagingClient;
  const logger = new RecordingLogger();

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation', topology: { lockDuration: 'PT5S' } });
    service = await startService({
      client: bus.client(),
      controllers: [SlowHandlers],
      server: { requests: { queue: queues.recommendationRequests }, events: [{ topic: topics.events, subscription: subscriptions.recommendation }] },
      proxy: { replyQueue: queues.replies, instanceId: 'lock-renewal-test', requestTimeoutInMs: 30_000 },
      logger,
    });
    messaging = service.messaging!;
  });
  afterAll(async () => {
    await service?.app.close();
    await bus?.stop();
  });

  it('completes a long request and a long event once each (the locks are renewed while they run)', async () => {
    const [reply] = await Promise.all([
      messaging.request('recommendation.get-product', { id: 'slow-request' }),
      messaging.publish('catalog.product.upserted', { product: testProduct('slow-event'), upsertedAt: new Date().toISOString() }),
    ]);
    expect(reply.product.id).toBe('slow-request');
    await waitFor('the slow event to finish', () => outlived.has('slow-event'), 20_000);
    for (const id of ['slow-request', 'slow-event']) expect(outlived.get(id)!.finishedAt).toBeGreaterThan(outlived.get(id)!.lockedUntil);
    await waitFor('both entities to be empty', async () => {
      const counts = await Promise.all([entityCounts(bus, queues.recommendationRequests), entityCounts(bus, `${topics.events}/Subscriptions/${subscriptions.recommendation}`)]);
      return counts.every((c) => c.active === 0 && c.deadLetter === 0);
    });
    expect(Object.fromEntries(runs)).toEqual({ 'slow-request': 1, 'slow-event': 1 });
    expect(logger.messages('warn')).toEqual([]);
  }, 30_000);
});
