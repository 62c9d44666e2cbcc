import { randomUUID } from 'node:crypto';
import { Controller, type INestApplication } from '@nestjs/common';
import { subscriptions, topics, type EventOf } from '@keyless/contracts';
import { waitFor } from '@keyless/testing';
import { OnEvent, ServiceBusContext, ServiceBusRecordBuilder, type MessagingClient } from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';

/** What each service saw: `<service>:<product id>` → subscription it came from. */
const received = new Map<string, string[]>();

function record(service: string, productId: string, context: ServiceBusContext): void {
  const key = `${service}:${productId}`;
  received.set(key, [...(received.get(key) ?? []), context.getReceiver().entityPath]);
}

@Controller()
class VisionLikeHandlers {
  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): void {
    record('vision', product.id, context);
  }
}

@Controller()
class RecommendationLikeHandlers {
  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): void {
    record('recommendation', product.id, context);
  }
}

describe('Events over the local Service Bus topic (host "gateway")', () => {
  let bus: TestBus;
  let vision: TestService;
  let recommendation: TestService;
  let publisher: { app: INestApplication; messaging: MessagingClient };

  beforeAll(async () => {
    bus = await startTestBus();
    vision = await startService({ client: bus.client(), controllers: [VisionLikeHandlers], server: { events: [{ topic: topics.events, subscription: subscriptions.vision }] } });
    recommendation = await startService({
      client: bus.client(),
      controllers: [RecommendationLikeHandlers],
      server: { events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: 4 }] },
    });
    publisher = await startRequester({ client: bus.client(), proxy: {} });
  });
  afterAll(async () => {
    await Promise.all([vision?.app.close(), recommendation?.app.close(), publisher?.app.close()]);
    await bus?.stop();
  });

  it('fans catalog.product.upserted out to both services, each through its own subscription, once', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `fan-out-${i}`);
    await Promise.all(ids.map((id) => publisher.messaging.publish('catalog.product.upserted', { product: testProduct(id), upsertedAt: new Date().toISOString() })));
    await waitFor('every product to reach both services', () => ids.every((id) => received.has(`vision:${id}`) && received.has(`recommendation:${id}`)));
    for (const id of ids) {
      expect(received.get(`vision:${id}`)).toEqual([`${topics.events}/Subscriptions/${subscriptions.vision}`]);
      expect(received.get(`recommendation:${id}`)).toEqual([`${topics.events}/Subscriptions/${subscriptions.recommendation}`]);
    }
  });

  it('drops a republished event with the same message id (the topic\'s duplicate detection)', async () => {
    const messageId = `upsert-${randomUUID()}`;
    const event = () => new ServiceBusRecordBuilder({ product: testProduct('republished'), upsertedAt: new Date().toISOString() }).setMessageId(messageId).build();
    await publisher.messaging.publish('catalog.product.upserted', event());
    await publisher.messaging.publish('catalog.product.upserted', event());
    await publisher.messaging.publish('catalog.product.upserted', { product: testProduct('after-republish'), upsertedAt: new Date().toISOString() });
    await waitFor('the later event to reach both services', () => received.has('vision:after-republish') && received.has('recommendation:after-republish'));
    expect(received.get('vision:republished')).toHaveLength(1);
    expect(received.get('recommendation:republished')).toHaveLength(1);
  });
});
