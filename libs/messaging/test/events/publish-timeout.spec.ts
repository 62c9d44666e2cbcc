import { Controller, type INestApplication } from '@nestjs/common';
import { subscriptions, topics, type EventOf } from '@keyless/contracts';
import { rejectionOf, waitFor } from '@keyless/testing';
import { MessagingError, OnEvent, type MessagingClient } from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';

/** How many times each product's event was handled. */
const handled = new Map<string, number>();

@Controller()
class Handlers {
  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>): void {
    handled.set(product.id, (handled.get(product.id) ?? 0) + 1);
  }
}

// The gateway answers an upsert once its event is published: a broker that takes the event but does not commit it
// (the `servicebus-store stall` fault) must not hold the caller for the SDK's four tries of its per-try timeout.
describe('A publish while Service Bus accepts nothing (servicebus-store stall, host "gateway")', () => {
  let bus: TestBus;
  let service: TestService;
  let publisher: { app: INestApplication; messaging: MessagingClient };

  beforeAll(async () => {
    bus = await startTestBus();
    service = await startService({ client: bus.client(), controllers: [Handlers], server: { events: [{ topic: topics.events, subscription: subscriptions.recommendation }] } });
    // The SDK alone (bus.client's retries: 2 tries of 5 s) would take over 10 s to give up; 3 s leaves the first
    // publish (connection, token, link) room on a busy machine.
    publisher = await startRequester({ client: bus.client(), proxy: { requestTimeoutInMs: 3_000 } });
    await publisher.messaging.publish('catalog.product.upserted', { product: testProduct('before'), upsertedAt: new Date().toISOString() });
    await waitFor('the first event to be handled', () => handled.has('before'));
  });
  afterAll(async () => {
    await bus?.test.azure.faults.set('servicebus-store', { mode: 'none' });
    await Promise.all([service?.app.close(), publisher?.app.close()]);
    await bus?.stop();
  });

  it('rejects with PublishTimeout within the proxy’s timeout; the event still arrives, once, when the store is back', async () => {
    await bus.test.azure.faults.set('servicebus-store', { mode: 'stall' });
    const error = await rejectionOf(publisher.messaging.publish('catalog.product.upserted', { product: testProduct('held'), upsertedAt: new Date().toISOString() }));
    expect(error).toBeInstanceOf(MessagingError);
    expect(error).toMatchObject({ code: 'PublishTimeout' });
    expect((error as Error).message).toMatch(/^Service Bus did not accept event "catalog\.product\.upserted" \(message \S+\) on topic "[^"]+" within 3000 ms; it may still arrive/);
    expect(handled.has('held')).toBe(false);

    await bus.test.azure.faults.set('servicebus-store', { mode: 'none' });
    await publisher.messaging.publish('catalog.product.upserted', { product: testProduct('after'), upsertedAt: new Date().toISOString() });
    await waitFor('the held and the later event to be handled', () => handled.has('held') && handled.has('after'));
    expect(handled.get('held')).toBe(1);
  });
});
