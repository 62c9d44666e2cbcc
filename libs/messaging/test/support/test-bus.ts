import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusClientOptions, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { openTestDatabase } from '@keyless/database/testing';
import { postgresDataPlane, repoRoot, serviceBusDataPlane, type DataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { idempotencySchema } from '../../src/index.js';

/**
 * Short SDK retries, so a missing reply or a dead broker shows up in seconds, not behind the SDK's
 * 60-second operation timeout and 30-second retry delay. Streaming receivers re-attach every `retryDelayInMs`.
 */
export const shortRetries: ServiceBusClientOptions = { retryOptions: { maxRetries: 1, retryDelayInMs: 200, timeoutInMs: 5_000 } };

/** Entity settings a test file needs different from the project's topology (applied to every queue and subscription). */
export interface TopologyOverrides {
  /** ISO 8601 lock duration; the broker accepts PT5S at least. Default: PT5S (short, so lost locks show quickly). */
  lockDuration?: string;
  /** Deliveries before the broker dead-letters on its own. Default: the project's topology. */
  maxDeliveryCount?: number;
}

type EntityDefinition = { Name: string; Properties?: Record<string, unknown>; Subscriptions?: EntityDefinition[] };

/**
 * Writes the project's topology (`infra/servicebus-topology.json`: the entity names the contracts use)
 * with `overrides` applied, into `directory`; returns the file path.
 */
export function writeTestTopology(directory: string, overrides: TopologyOverrides = {}): string {
  const topology = JSON.parse(readFileSync(join(repoRoot, 'infra/servicebus-topology.json'), 'utf8')) as {
    UserConfig: { Namespaces: { Queues: EntityDefinition[]; Topics: EntityDefinition[] }[] };
  };
  const apply = (entity: EntityDefinition): void => {
    entity.Properties = {
      ...entity.Properties,
      LockDuration: overrides.lockDuration ?? 'PT5S',
      ...(overrides.maxDeliveryCount ? { MaxDeliveryCount: overrides.maxDeliveryCount } : {}),
    };
  };
  for (const namespace of topology.UserConfig.Namespaces) {
    namespace.Queues.forEach(apply);
    for (const topic of namespace.Topics) topic.Subscriptions?.forEach(apply);
  }
  const file = join(directory, 'test-topology.json');
  writeFileSync(file, JSON.stringify(topology, null, 2));
  return file;
}

/** A local Azure with the Service Bus data plane, entered as one host, with a real SDK client factory. */
export interface TestBus {
  test: TestAzure;
  env: Record<string, string>;
  credential: ManagedIdentityCredential;
  /** A new SDK client (one AMQP connection), short retries unless `options` say otherwise; closed by `stop`. */
  client(options?: ServiceBusClientOptions): ServiceBusClient;
  stop(): Promise<void>;
}

/**
 * Starts the local Azure in this process with the project's Service Bus topology (short lock durations) and any
 * other data planes (PostgreSQL for the shared idempotency store, its engine started and the idempotency table
 * created), and enters `host` (the three service hosts share the identity id-keyless and its role assignments).
 */
export async function startTestBus(options: { host?: string; topology?: TopologyOverrides; dataPlanes?: readonly DataPlane[] } = {}): Promise<TestBus> {
  const home = mkdtempSync(join(tmpdir(), 'messaging-test-'));
  const topologyFile = writeTestTopology(home, options.topology);
  const test = await startTestAzure({ home, dataPlanes: [serviceBusDataPlane, ...(options.dataPlanes ?? [])], config: { resources: { serviceBus: { topologyFile } } }, newPorts: 'system' });
  const env = test.enterHost(options.host ?? 'gateway');
  const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  // The local PostgreSQL engine starts with its first connection: 10–20 s on a loaded machine. Started here, with the
  // idempotency table, that time counts against the caller's set-up rather than its first test (a CI run saw
  // graceful-shutdown.spec's first test spend 13 s of its budget in its first instance's start).
  if (options.dataPlanes?.includes(postgresDataPlane)) await (await openTestDatabase(env, { schemas: [idempotencySchema] })).close();
  const clients: ServiceBusClient[] = [];
  return {
    test,
    env,
    credential,
    client(clientOptions = shortRetries) {
      const client = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, clientOptions);
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
      await test.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Receives from `entity`'s dead-letter queue until `count` messages arrived (receiveAndDelete), or fails after `timeoutInMs`. */
export async function readDeadLetters(client: ServiceBusClient, entity: string | [topic: string, subscription: string], count: number, timeoutInMs = 10_000): Promise<ServiceBusReceivedMessage[]> {
  const options = { subQueueType: 'deadLetter' as const, receiveMode: 'receiveAndDelete' as const };
  const receiver = typeof entity === 'string' ? client.createReceiver(entity, options) : client.createReceiver(entity[0], entity[1], options);
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + timeoutInMs;
  try {
    while (received.length < count && Date.now() < deadline) {
      received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs: Math.max(50, Math.min(1000, deadline - Date.now())) })));
    }
  } finally {
    await receiver.close();
  }
  if (received.length < count) throw new Error(`received ${received.length} of ${count} dead-lettered messages of ${String(entity)} within ${timeoutInMs} ms`);
  return received;
}

/** Message counts of a queue or subscription (`events/Subscriptions/vision`) as the local broker's operator view shows them. */
export async function entityCounts(bus: TestBus, path: string): Promise<{ active: number; locked: number; deadLetter: number; scheduled: number; deferred: number }> {
  const rows = await bus.test.admin().call<{ name: string; active?: number; locked?: number; deadLetter?: number; scheduled?: number; deferred?: number }[]>(
    'GET',
    '/servicebus/entities',
  );
  const row = rows.find((r) => r.name.toLowerCase() === path.toLowerCase());
  if (!row) throw new Error(`no entity ${path} in ${rows.map((r) => r.name).join(', ')}`);
  return { active: row.active ?? 0, locked: row.locked ?? 0, deadLetter: row.deadLetter ?? 0, scheduled: row.scheduled ?? 0, deferred: row.deferred ?? 0 };
}
