import { Controller, type INestApplication } from '@nestjs/common';
import { subscriptions, topics, type EventOf } from '@keyless/contracts';
import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { postgresDataPlane } from '@keyless/local-azure';
import { waitFor } from '@keyless/testing';
import { idempotencySchema, OnEvent, PostgresIdempotencyStore, ServiceBusContext, type MessagingClient, type ServiceBusServerOptions } from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { entityCounts, startTestBus, type TestBus } from '../support/test-bus.js';

/** Which service instance started and finished each product, in order. */
const started: { id: string; by: string; deliveryCount: number }[] = [];
const finished: { id: string; by: string }[] = [];
/** Handlers of first deliveries of "stuck-…" products wait for this (they overrun any shutdown deadline). */
let releaseStuck: () => void = () => undefined;
const stuck = new Promise<void>((resolve) => (releaseStuck = resolve));

function indexingHandlers(instance: string): new () => object {
  @Controller()
  class IndexingHandlers {
    @OnEvent('catalog.product.upserted')
    async upserted({ product }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): Promise<void> {
      started.push({ id: product.id, by: instance, deliveryCount: context.getDeliveryCount() });
      if (product.id.startsWith('stuck') && context.getDeliveryCount() === 0) await stuck;
      // Simulated work (an embedding call), long enough for shutdown to find handlers in flight.
      else await new Promise((resolve) => setTimeout(resolve, 100));
      finished.push({ id: product.id, by: instance });
    }
  }
  return IndexingHandlers;
}

const subscriptionPath = `${topics.events}/Subscriptions/${subscriptions.recommendation}`;

// app.close() is what Nest runs on SIGTERM once the app enabled shutdown hooks (as the services do).
describe('Graceful shutdown of a service under load on the local Service Bus (host "recommendation")', () => {
  let bus: TestBus;
  let publisher: { app: INestApplication; messaging: MessagingClient };
  const databases: TestDatabase[] = [];
  const services: TestService[] = [];

  /** A service instance with its own pool; all share the idempotency table in PostgreSQL, as instances of one service do. */
  async function startInstance(name: string, options: Partial<ServiceBusServerOptions> = {}): Promise<TestService> {
    const database = await openTestDatabase(bus.env, { schemas: [idempotencySchema] });
    databases.push(database);
    const service = await startService({
      client: bus.client(),
      controllers: [indexingHandlers(name)],
      server: {
        events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: 4 }],
        idempotencyStore: new PostgresIdempotencyStore(database.pool),
        ...options,
      },
    });
    services.push(service);
    return service;
  }

  const publishAll = (ids: string[]): Promise<void[]> =>
    Promise.all(ids.map((id) => publisher.messaging.publish('catalog.product.upserted', { product: testProduct(id), upsertedAt: new Date().toISOString() })));

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation', topology: { lockDuration: 'PT5S' }, dataPlanes: [postgresDataPlane] });
    publisher = await startRequester({ client: bus.client(), proxy: {} });
  }, 120_000);
  afterAll(async () => {
    releaseStuck();
    await Promise.all(services.map((s) => s.app.close().catch(() => undefined)));
    await publisher?.app.close();
    await Promise.all(databases.map((d) => d.close()));
    await bus?.stop();
  });

  it('lets in-flight handlers finish and settle, leaves nothing locked, and loses or repeats no message', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `graceful-${i}`);
    const first = await startInstance('first');
    await publishAll(ids);
    await waitFor('handlers to be in flight', () => finished.length >= 8 && started.length > finished.length);

    await first.app.close();
    const startedByFirst = started.filter((s) => s.by === 'first').map((s) => s.id);
    expect(finished.filter((f) => f.by === 'first').map((f) => f.id).sort()).toEqual([...startedByFirst].sort());
    // Settled or given back at once: no message waits out a lock of the closed instance.
    expect(await entityCounts(bus, subscriptionPath)).toMatchObject({ locked: 0, deadLetter: 0 });
    expect(startedByFirst.length).toBeLessThan(ids.length);

    const second = await startInstance('second');
    await waitFor('every product to be indexed', () => ids.every((id) => finished.some((f) => f.id === id)));
    for (const id of ids) expect(finished.filter((f) => f.id === id)).toHaveLength(1);
    expect(started.filter((s) => s.by === 'second').map((s) => s.id)).toEqual(expect.arrayContaining(ids.filter((id) => !startedByFirst.includes(id))));
    await waitFor('the subscription to be empty', async () => (await entityCounts(bus, subscriptionPath)).active === 0);
    await second.app.close();
  }, 60_000);

  it('gives a handler that overruns the shutdown deadline back to the broker at once', async () => {
    const instance = await startInstance('impatient', { shutdownTimeoutInMs: 300 });
    await publishAll(['stuck-1']);
    await waitFor('the stuck handler to start', () => started.some((s) => s.id === 'stuck-1' && s.by === 'impatient'));
    const closing = performance.now();
    await instance.app.close();
    expect(performance.now() - closing).toBeLessThan(5_000);
    expect(await entityCounts(bus, subscriptionPath)).toMatchObject({ locked: 0 });

    await startInstance('successor');
    await waitFor('stuck-1 to be handled by the successor', () => finished.some((f) => f.id === 'stuck-1' && f.by === 'successor'));
    expect(started.filter((s) => s.id === 'stuck-1')).toEqual([
      { id: 'stuck-1', by: 'impatient', deliveryCount: 0 },
      { id: 'stuck-1', by: 'successor', deliveryCount: 1 },
    ]);
  }, 60_000);
});
