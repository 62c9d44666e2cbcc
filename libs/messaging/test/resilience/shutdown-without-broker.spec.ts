import { Controller, type INestApplication } from '@nestjs/common';
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { clientDefaults } from '@keyless/auth/diagnostics';
import { subscriptions, topics, type EventOf } from '@keyless/contracts';
import type { LocalAzureProcess } from '@keyless/local-azure/testing';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { OnEvent, type MessagingClient } from '../../src/index.js';
import { startChildAzure } from '../support/child-azure.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';

/** Which instance started and finished each product. */
const started: { id: string; by: string }[] = [];
const finished: { id: string; by: string }[] = [];
/** The first instance's handlers wait on a dependency that never answers once the local Azure is gone. */
let answerFirst: () => void = () => undefined;
const dependencyOfFirst = new Promise<void>((resolve) => (answerFirst = resolve));

function indexingHandlers(instance: string): new () => object {
  @Controller()
  class IndexingHandlers {
    @OnEvent('catalog.product.upserted')
    async upserted({ product }: EventOf<'catalog.product.upserted'>): Promise<void> {
      started.push({ id: product.id, by: instance });
      if (instance === 'first') await dependencyOfFirst;
      finished.push({ id: product.id, by: instance });
    }
  }
  return IndexingHandlers;
}

/** What `stopOnSignals` of @keyless/observability gives `app.close()` before it exits without it. */
const closeBoundInMs = 7_000;
const startTimeoutInMs = 90_000;

// The local Azure runs as its own process (the CLI) and is killed with SIGKILL while a service's handlers wait on it;
// then the service is closed (what SIGTERM runs). Its clients use the services' own Service Bus retry options, so the
// SDK's settlements and closes on the dead connection take as long as they would in a service.
describe('A service closed after the local Azure is gone (local Azure CLI in a child process, host "recommendation")', () => {
  let azure: LocalAzureProcess;
  let publisher: { app: INestApplication; messaging: MessagingClient };
  const services: TestService[] = [];
  const clients: ServiceBusClient[] = [];
  const logger = new RecordingLogger();
  let client: () => ServiceBusClient;

  beforeAll(async () => {
    // Its start and restart on a loaded machine (two busy loops beside other work) have taken more than 30 s.
    azure = await startChildAzure({ lockDuration: 'PT5S' }, startTimeoutInMs);
    const env = azure.enterHost('recommendation');
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    client = () => {
      clients.push(new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, { retryOptions: clientDefaults.serviceBusRetryOptions }));
      return clients.at(-1)!;
    };
    publisher = await startRequester({ client: client(), proxy: {} });
  }, 120_000);
  afterAll(async () => {
    answerFirst();
    await Promise.all([...services.map((s) => s.app.close().catch(() => undefined)), publisher?.app.close().catch(() => undefined)]);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await azure?.stop();
  }, 30_000);

  const startInstance = async (name: string): Promise<TestService> => {
    const service = await startService({
      client: client(),
      controllers: [indexingHandlers(name)],
      server: { events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: 4 }] },
      // Publish-only, as vision's: its senders are closed on the way out too.
      proxy: {},
      logger,
    });
    services.push(service);
    return service;
  };

  it('closes within its bound, says which messages it could not give back, and they are handled after the restart', async () => {
    const ids = ['gone-1', 'gone-2'];
    const first = await startInstance('first');
    await Promise.all(ids.map((id) => publisher.messaging.publish('catalog.product.upserted', { product: testProduct(id), upsertedAt: new Date().toISOString() })));
    await waitFor('both handlers to be running', () => ids.every((id) => started.some((s) => s.id === id)), 20_000);

    await azure.kill('SIGKILL');
    const closing = performance.now();
    await first.app.close();
    const tookInMs = performance.now() - closing;

    expect(tookInMs).toBeLessThan(closeBoundInMs);
    expect(finished).toEqual([]);
    const warnings = logger.messages('warn');
    expect(warnings.filter((line) => /^shutdown: abandoning message \S+ of events\/Subscriptions\/recommendation; its handler did not finish in time$/.test(line))).toHaveLength(ids.length);
    // Service Bus is gone: each abandon is refused or never confirmed, and a line says what becomes of the message.
    const refused = warnings.filter((line) => /^shutdown: could not abandon message \S+ of events\/Subscriptions\/recommendation; it is redelivered once its lock expires: /.test(line));
    const unconfirmed = warnings.filter((line) => /^shutdown: Service Bus did not confirm giving back .* each stays locked on the broker until its lock expires, then is redelivered/.test(line));
    expect(refused.length + (unconfirmed.join().match(/message \S+ of events\/Subscriptions\/recommendation/g) ?? []).length).toBeGreaterThanOrEqual(ids.length);

    await azure.start(startTimeoutInMs);
    await startInstance('successor');
    await waitFor('both products to be handled after the restart', () => ids.every((id) => finished.some((f) => f.id === id && f.by === 'successor')), 60_000);
    expect(finished.filter((f) => ids.includes(f.id))).toHaveLength(ids.length);
  }, 240_000);
});
