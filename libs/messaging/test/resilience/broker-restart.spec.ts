import { Controller, type INestApplication } from '@nestjs/common';
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { MessagingHealthIndicator, OnEvent, OnRequest, RequestTimeoutError, ServiceBusRecordBuilder, type MessagingClient } from '../../src/index.js';
import { type ServiceBusClientProxy } from '../../src/internals.js';
import type { LocalAzureProcess } from '@keyless/local-azure/testing';
import { startChildAzure } from '../support/child-azure.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { shortRetries } from '../support/test-bus.js';

/** Effects, keyed by business id: how many times each product was indexed / each request answered. */
const indexed = new Map<string, number>();
const answered = new Map<string, number>();

@Controller()
class Handlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    answered.set(id, (answered.get(id) ?? 0) + 1);
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>): void {
    indexed.set(product.id, (indexed.get(product.id) ?? 0) + 1);
  }
}

type Outcome = { id: string; outcome: 'replied' | 'timed-out' } | { id: string; outcome: 'failed'; error: unknown };

// The broker runs as its own process (the local Azure CLI) on fixed ports and is killed with SIGKILL
// while requests and events flow, then started again on the same home: the transport must recover by
// itself — receivers, senders and the reply session — without restarting the service or the client.
describe('A broker killed and restarted mid-stream (local Azure CLI in a child process, host "gateway")', () => {
  let azure: LocalAzureProcess;
  let service: TestService;
  let requester: { app: INestApplication; messaging: MessagingClient; proxy: ServiceBusClientProxy };
  const clients: ServiceBusClient[] = [];
  const logger = new RecordingLogger();

  beforeAll(async () => {
    azure = await startChildAzure({ lockDuration: 'PT5S' });
    const env = azure.enterHost('gateway');
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    const client = (): ServiceBusClient => {
      clients.push(new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, shortRetries));
      return clients.at(-1)!;
    };
    service = await startService({
      client: client(),
      controllers: [Handlers],
      server: { requests: { queue: queues.recommendationRequests, maxConcurrentCalls: 8 }, events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: 8 }] },
      logger,
    });
    requester = await startRequester({
      client: client(),
      proxy: { replyQueue: queues.replies, instanceId: 'gateway-restart', requestTimeoutInMs: 4_000, sessionRetry: { initialDelayInMs: 100, maxDelayInMs: 1_000 } },
      logger,
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([service?.app.close(), requester?.app.close()]);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await azure?.stop();
  }, 30_000);

  it('completes or times out every request, applies every accepted event exactly once, and serves again after the restart', async () => {
    const outcomes: Outcome[] = [];
    const accepted = new Set<string>();
    let running = true;

    const requestLoop = async (worker: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const id = `req-${worker}-${i}`;
        try {
          const reply = await requester.messaging.request('recommendation.get-product', { id });
          expect(reply.product.id).toBe(id);
          outcomes.push({ id, outcome: 'replied' });
        } catch (error) {
          outcomes.push(error instanceof RequestTimeoutError ? { id, outcome: 'timed-out' } : { id, outcome: 'failed', error });
        }
      }
    };
    // A publisher that retries a failed publish with the same message id until the broker accepts it:
    // duplicate detection on the topic drops a copy whose first send did get in before the crash.
    const publishLoop = async (): Promise<void> => {
      for (let i = 0; running; i++) {
        const id = `product-${i}`;
        const event = new ServiceBusRecordBuilder({ product: testProduct(id), upsertedAt: new Date().toISOString() }).setMessageId(`upsert-${id}`).build();
        for (;;) {
          try {
            await requester.messaging.publish('catalog.product.upserted', event);
            accepted.add(id);
            break;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      }
    };

    const load = Promise.all([...Array.from({ length: 4 }, (_, w) => requestLoop(w)), publishLoop()]);
    await waitFor('traffic to flow', () => outcomes.filter((o) => o.outcome === 'replied').length >= 40 && indexed.size >= 20, 20_000);
    await azure.kill('SIGKILL');
    const repliedBeforeRestart = outcomes.filter((o) => o.outcome === 'replied').length;
    await waitFor('requests to fail while the broker is down', () => outcomes.some((o) => o.outcome !== 'replied'), 10_000);
    await azure.start();
    await waitFor('requests to be answered again', () => outcomes.filter((o) => o.outcome === 'replied').length >= repliedBeforeRestart + 40, 30_000);
    running = false;
    await load;

    expect(outcomes.filter((o) => o.outcome === 'failed')).toEqual([]);
    expect(outcomes.some((o) => o.outcome === 'timed-out')).toBe(true);
    await waitFor('every accepted event to be indexed', () => [...accepted].every((id) => indexed.has(id)), 20_000);
    expect([...indexed.entries()].filter(([, count]) => count !== 1)).toEqual([]);
    expect([...indexed.keys()].filter((id) => !accepted.has(id))).toEqual([]);
    // A request the handler ran twice would be a duplicate effect, not merely a late reply.
    expect([...answered.entries()].filter(([, count]) => count !== 1)).toEqual([]);

    expect(requester.proxy.health()).toMatchObject({ state: 'attached', pendingRequests: 0 });
    expect(service.server.health().map((r) => r.state)).toEqual(['receiving', 'receiving']);
    const health = service.app.get(MessagingHealthIndicator).check('messaging');
    expect(health).toEqual({ messaging: expect.objectContaining({ status: 'up' }) });
    expect(logger.messages('warn')).toEqual(expect.arrayContaining([expect.stringMatching(/^reply session gateway-restart on replies: /)]));
  }, 90_000);
});
