// Benchmark of @keyless/messaging against the raw @azure/service-bus SDK doing the same exchange, on
// the same broker: the local Service Bus started by its CLI (built dist/) in its own process.
//
//   npx nx run-many -t build && npx node bench/messaging.bench.ts [--quick] [--only=latency|throughput|eventRate]
//
// Workloads (both sides run in this process, with one ServiceBusClient each for the requester and the
// service, as two apps would):
//   1. request/reply latency: one request in flight at a time → p50 / p99;
//   2. request/reply throughput: `concurrency` requests in flight → requests/s;
//   3. events: publish with `concurrency` publishes in flight, one subscriber → events/s (publish → handled).
// The transport side is a Nest app with an @OnRequest/@OnEvent handler (contract validation, reply
// envelope, idempotency guard, settlement policy, tracing and metrics API calls); the raw side sends the
// same messages with the SDK (subject, message id, replyTo, reply session, TTL), answers with a sender and
// completes with the receiver. Targets alternate within each round; each figure is the median of the rounds.
// libs/messaging/README.md records the numbers.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { queues, subscriptions, topics } from '@keyless/contracts';
import { MessagingClient, MessagingModule, OnEvent, OnRequest, ServiceBusServer } from '@keyless/messaging';
// The in-memory guard: this bench measures the library's own overhead, not a database round trip.
import { MemoryIdempotencyStore } from '@keyless/messaging/testing';
import { LocalAzureProcess } from '@keyless/local-azure/testing';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');
const settings = {
  latencyRequests: quick ? 200 : 500,
  warmup: 100,
  throughputRequests: quick ? 1000 : 4000,
  events: quick ? 1000 : 4000,
  concurrency: 32,
  rounds: quick ? 1 : 3,
};
const retryOptions = { retryOptions: { maxRetries: 0, timeoutInMs: 20_000 } };

const product = (id: string) => ({ id, name: `Product ${id}`, description: 'A product of the benchmark catalog.', category: 'bench', price: 12.5, available: true });
const productView = (id: string) => ({ product: product(id), vision: null, indexing: { state: 'indexed' as const, updatedAt: '2026-01-01T00:00:00.000Z' } });

// ---------------------------------------------------------------------------------------------------
// The two sides of each exchange

interface Side {
  request(id: string): Promise<unknown>;
  publish(id: string): Promise<void>;
  /** Resolves once `count` events have been handled since the last call. */
  eventsHandled(count: number): Promise<void>;
  close(): Promise<void>;
}

function counter(): { add(): void; reached(count: number): Promise<void> } {
  let handled = 0;
  let waiter: { count: number; resolve: () => void } | undefined;
  return {
    add() {
      handled++;
      if (waiter && handled >= waiter.count) {
        waiter.resolve();
        waiter = undefined;
      }
    },
    reached(count) {
      handled = 0;
      return new Promise((resolve) => (waiter = { count, resolve }));
    },
  };
}

/** @keyless/messaging: a requester app and a service app, wired as the apps wire them. */
async function transportSide(client: () => ServiceBusClient): Promise<Side> {
  const events = counter();
  // Decorators applied as calls: this file runs with Node's type stripping (erasable syntax only).
  class Handlers {
    getProduct({ id }: { id: string }) {
      return productView(id);
    }
    upserted() {
      events.add();
    }
  }
  for (const [method, decorate] of [
    ['getProduct', OnRequest('recommendation.get-product')],
    ['upserted', OnEvent('catalog.product.upserted')],
  ] as const) {
    (decorate as MethodDecorator)(Handlers.prototype, method, Object.getOwnPropertyDescriptor(Handlers.prototype, method)!);
  }
  Controller()(Handlers);
  class ServiceModule {}
  Module({
    imports: [
      MessagingModule.forRoot({
        client: client(),
        server: {
          idempotencyStore: new MemoryIdempotencyStore(),
          requests: { queue: queues.recommendationRequests, maxConcurrentCalls: settings.concurrency },
          events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: settings.concurrency }],
        },
      }),
    ],
    controllers: [Handlers],
  })(ServiceModule);
  const service = await NestFactory.create(ServiceModule, { logger: false });
  service.connectMicroservice({ strategy: service.get(ServiceBusServer) });
  await service.startAllMicroservices();
  await service.init();

  class RequesterModule {}
  Module({ imports: [MessagingModule.forRoot({ client: client(), proxy: { replyQueue: queues.replies, instanceId: `bench-transport-${randomUUID()}` } })] })(RequesterModule);
  const requester = await NestFactory.create(RequesterModule, { logger: false });
  await requester.init();
  const messaging = requester.get(MessagingClient);
  return {
    request: (id) => messaging.request('recommendation.get-product', { id }),
    publish: (id) => messaging.publish('catalog.product.upserted', { product: product(id), upsertedAt: new Date().toISOString() }),
    eventsHandled: (count) => events.reached(count),
    async close() {
      await requester.close();
      await service.close();
    },
  };
}

/** The raw SDK doing the same exchange: same messages, same settlement, no transport. */
async function rawSide(client: () => ServiceBusClient): Promise<Side> {
  const events = counter();
  const serviceClient = client();
  const requesterClient = client();
  const requests = serviceClient.createReceiver(queues.recommendationRequests);
  const replies = serviceClient.createSender(queues.replies);
  const requestSubscription = requests.subscribe(
    {
      processMessage: async (message: ServiceBusReceivedMessage) => {
        const { id } = message.body as { id: string };
        await replies.sendMessages({
          messageId: randomUUID(),
          subject: message.subject,
          sessionId: message.replyToSessionId,
          correlationId: String(message.messageId),
          contentType: 'application/json',
          body: { ok: true, data: productView(id) },
          timeToLive: 300_000,
        });
        await requests.completeMessage(message);
      },
      processError: async () => undefined,
    },
    { autoCompleteMessages: false, maxConcurrentCalls: settings.concurrency },
  );
  const eventReceiver = serviceClient.createReceiver(topics.events, subscriptions.recommendation);
  const eventSubscription = eventReceiver.subscribe(
    {
      processMessage: async (message: ServiceBusReceivedMessage) => {
        events.add();
        await eventReceiver.completeMessage(message);
      },
      processError: async () => undefined,
    },
    { autoCompleteMessages: false, maxConcurrentCalls: settings.concurrency },
  );

  const sessionId = `bench-raw-${randomUUID()}`;
  const pending = new Map<string, (body: unknown) => void>();
  const session = await requesterClient.acceptSession(queues.replies, sessionId, { receiveMode: 'receiveAndDelete' });
  session.subscribe({
    processMessage: async (message: ServiceBusReceivedMessage) => {
      const id = String(message.correlationId);
      pending.get(id)?.(message.body);
      pending.delete(id);
    },
    processError: async () => undefined,
  });
  const requestSender = requesterClient.createSender(queues.recommendationRequests);
  const eventSender = requesterClient.createSender(topics.events);
  return {
    async request(id) {
      const messageId = randomUUID();
      const reply = new Promise((resolve) => pending.set(messageId, resolve));
      await requestSender.sendMessages({
        messageId,
        subject: 'recommendation.get-product',
        contentType: 'application/json',
        replyTo: queues.replies,
        replyToSessionId: sessionId,
        timeToLive: 30_000,
        body: { id },
      });
      return ((await reply) as { data: unknown }).data;
    },
    async publish(id) {
      await eventSender.sendMessages({
        messageId: randomUUID(),
        subject: 'catalog.product.upserted',
        contentType: 'application/json',
        body: { product: product(id), upsertedAt: new Date().toISOString() },
      });
    },
    eventsHandled: (count) => events.reached(count),
    async close() {
      await requestSubscription.close();
      await eventSubscription.close();
      await Promise.all([session.close(), requests.close(), eventReceiver.close(), replies.close(), requestSender.close(), eventSender.close()]);
      await Promise.all([serviceClient.close(), requesterClient.close()]);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Workloads

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function latency(side: Side): Promise<Record<string, number>> {
  await warmUp(side);
  const times: number[] = [];
  for (let i = 0; i < settings.latencyRequests; i++) {
    const started = performance.now();
    await side.request(`p-${i}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { 'request/reply p50 ms': round(percentile(times, 50), 2), 'request/reply p99 ms': round(percentile(times, 99), 2) };
}

async function inParallel(total: number, concurrency: number, run: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await run(next++);
    }),
  );
  return performance.now() - started;
}

async function warmUp(side: Side): Promise<void> {
  for (let i = 0; i < settings.warmup; i++) await side.request(`warm-${i}`);
  const handled = side.eventsHandled(settings.warmup);
  for (let i = 0; i < settings.warmup; i++) await side.publish(`warm-${i}`);
  await handled;
}

async function throughput(side: Side): Promise<Record<string, number>> {
  await warmUp(side);
  const elapsed = await inParallel(settings.throughputRequests, settings.concurrency, (i) => side.request(`t-${i}`));
  return { [`requests/s (${settings.concurrency} in flight)`]: round((settings.throughputRequests / elapsed) * 1000) };
}

async function eventRate(side: Side): Promise<Record<string, number>> {
  await warmUp(side);
  const handled = side.eventsHandled(settings.events);
  const started = performance.now();
  const publishedIn = await inParallel(settings.events, settings.concurrency, (i) => side.publish(`e-${i}`));
  await handled;
  if (process.env.BENCH_DEBUG) process.stderr.write(`    published in ${publishedIn.toFixed(0)} ms, handled in ${(performance.now() - started).toFixed(0)} ms\n`);
  return { [`events/s (publish → handled, ${settings.concurrency} publishes in flight)`]: round((settings.events / (performance.now() - started)) * 1000) };
}

// ---------------------------------------------------------------------------------------------------
// Harness

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'messaging-bench-'));
  // The project's entities, with only the subscription the benchmark consumes on the events topic.
  const topology = JSON.parse(readFileSync(join(repoRoot, 'infra/servicebus-topology.json'), 'utf8'));
  for (const topic of topology.UserConfig.Namespaces[0].Topics) {
    topic.Subscriptions = topic.Subscriptions.filter((s: { Name: string }) => s.Name === subscriptions.recommendation);
    topic.Properties.RequiresDuplicateDetection = false;
  }
  const topologyFile = join(home, 'topology.json');
  writeFileSync(topologyFile, JSON.stringify(topology));
  const broker = new LocalAzureProcess({ home, deleteHomeOnStop: true, config: { resources: { serviceBus: { topologyFile } } } });
  await broker.start();
  try {
    const env = broker.enterHost('gateway');
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    const clients: ServiceBusClient[] = [];
    const client = (): ServiceBusClient => {
      clients.push(new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, retryOptions));
      return clients.at(-1)!;
    };
    // One side at a time: both would otherwise consume the same queue and subscription.
    const sides: [string, (client: () => ServiceBusClient) => Promise<Side>][] = [
      ['@keyless/messaging', transportSide],
      ['raw @azure/service-bus', rawSide],
    ];
    const samples = new Map<string, Map<string, number[]>>(sides.map(([name]) => [name, new Map()]));
    const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
    for (const workload of [latency, throughput, eventRate].filter((w) => !only || w.name === only)) {
      for (let r = 0; r < settings.rounds; r++) {
        for (const [name, start] of r % 2 === 0 ? sides : [...sides].reverse()) {
          process.stderr.write(`  ${workload.name} — ${name} — round ${r + 1}\n`);
          const side = await start(client);
          for (const [metric, value] of Object.entries(await workload(side))) {
            const values = samples.get(name)!.get(metric) ?? [];
            samples.get(name)!.set(metric, [...values, value]);
          }
          await side.close();
        }
      }
    }
    await Promise.all(clients.map((c) => c.close()));

    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const results = Object.fromEntries([...samples].map(([name, metrics]) => [name, Object.fromEntries([...metrics].map(([metric, values]) => [metric, median(values)]))]));
    const transport = results['@keyless/messaging']!;
    const raw = results['raw @azure/service-bus']!;
    const rows = Object.keys(transport).map((metric) => {
      const isLatency = metric.endsWith(' ms');
      return {
        metric,
        transport: transport[metric],
        raw: raw[metric],
        [isLatency ? 'overhead ms' : 'transport / raw']: isLatency ? round(transport[metric]! - raw[metric]!, 2) : round(transport[metric]! / raw[metric]!, 2),
        goal: metric.includes('p50') ? '< 1 ms' : metric.includes('p99') ? '' : '≥ 0.8',
      };
    });
    process.stdout.write(`\n@keyless/messaging vs raw SDK (${quick ? 'quick' : 'full'} run, Node ${process.version}, median of ${settings.rounds} rounds, local Service Bus in its own process)\n`);
    console.table(rows);
    process.stdout.write(`${JSON.stringify({ settings, results })}\n`);
  } finally {
    await broker.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
