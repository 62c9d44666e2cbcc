import { Controller } from '@nestjs/common';
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { waitFor } from '@keyless/testing';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { MessagingHealthIndicator, OnEvent, OnRequest } from '../../src/index.js';
import type { LocalAzureProcess } from '@keyless/local-azure/testing';
import { startChildAzure } from '../support/child-azure.js';
import { startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { shortRetries } from '../support/test-bus.js';

/** Messages the handlers saw: none is sent, so a receiver that comes back cannot have learnt it from a message. */
let handled = 0;

@Controller()
class Handlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    handled++;
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  upserted(_event: EventOf<'catalog.product.upserted'>): void {
    handled++;
  }
}

// What an orchestrator's readiness probe sees of a service whose queue and subscription are idle when the broker
// restarts: the SDK reports the lost link, re-attaches it by itself, and says nothing when it has. The service must be
// ready again once its links are back, not only after its next message (on an idle queue: never).
describe('MessagingHealthIndicator, when the broker restarts while no message flows (local Azure CLI in a child process)', () => {
  let azure: LocalAzureProcess;
  let service: TestService;
  let client: ServiceBusClient;

  beforeAll(async () => {
    azure = await startChildAzure();
    const env = azure.enterHost('recommendation');
    client = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), shortRetries);
    service = await startService({
      client,
      controllers: [Handlers],
      server: { requests: { queue: queues.recommendationRequests }, events: [{ topic: topics.events, subscription: subscriptions.recommendation }] },
    });
  }, 60_000);
  afterAll(async () => {
    await service?.app.close();
    await client?.close().catch(() => undefined);
    await azure?.stop();
  }, 30_000);

  const check = (): HealthIndicatorResult<'servicebus'> => service.app.get(MessagingHealthIndicator).check('servicebus');
  const states = (): string[] => service.server.health().map((receiver) => receiver.state);

  it('is up again once the SDK has re-attached both links, without a message arriving, and while down says which links it waits for', async () => {
    await waitFor('both links to be attached', () => states().every((state) => state === 'receiving'), 20_000);
    expect(check().servicebus.status).toBe('up');

    await azure.kill('SIGKILL');
    // The SDK's first retry cycle ends in ECONNREFUSED and is reported as a `receive` error on each link.
    const down = await waitFor('both links to be reported lost', () => (states().every((state) => state !== 'receiving') ? check() : false), 20_000);
    await azure.start();

    await waitFor('the service to be ready again', () => check().servicebus.status === 'up', 20_000);
    expect(states()).toEqual(['receiving', 'receiving']);
    expect(handled).toBe(0);

    expect(down.servicebus.status).toBe('down');
    expect(down.servicebus['message']).toEqual(
      expect.stringMatching(/^waiting for recommendation-requests \(reconnecting for \d+\.\d s, last error: receive: .*ECONNREFUSED.*\); events\/Subscriptions\/recommendation \(reconnecting for /),
    );
  }, 90_000);
});
