// Latency of the local Service Bus's management calls with the unmodified @azure/service-bus client:
// ServiceBusAdministrationClient (ATOM over HTTPS on the namespace's port) and ServiceBusRuleManager
// (AMQP $management), and what the first-byte protocol routing costs a new AMQP connection.
//
//   npx nx run-many -t build && npx node bench/servicebus-management.bench.ts [--quick]
//
// Runs the local Azure CLI (built dist/) in a child process with persistence on, as `npm run
// local-azure` does; this process acts as the gateway host with Azure Service Bus Data Owner. Each
// call is awaited before the next; figures are milliseconds per call. Prints a table and a JSON line.
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, LocalAzureProcess } from '@keyless/local-azure/testing';

const quick = process.argv.includes('--quick');
const settings = {
  /** Calls per operation (after warm-up). */
  calls: quick ? 30 : 300,
  warmup: 10,
  /** Queues present when listing (the SDK's default page is 100). */
  listedQueues: 50,
  /** New connections opened for the connect figure. */
  connections: quick ? 10 : 50,
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number): number => Math.round(value * 100) / 100;

/** Runs `call(i)` warm-up + `calls` times, one at a time; p50, p95 and max in ms. */
async function measure(call: (i: number) => Promise<unknown>, calls = settings.calls): Promise<{ p50: number; p95: number; max: number }> {
  for (let i = 0; i < settings.warmup; i++) await call(-1 - i);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    await call(i);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: round(percentile(times, 50)), p95: round(percentile(times, 95)), max: round(times[times.length - 1]!) };
}

async function main(): Promise<void> {
  const [identity, login, management, serviceBus] = await freePorts(4);
  const home = mkdtempSync(join(tmpdir(), 'bench-servicebus-management-'));
  const topologyFile = join(home, 'bench-topology.json');
  writeFileSync(
    topologyFile,
    JSON.stringify({ UserConfig: { Namespaces: [{ Name: 'bench', Queues: [{ Name: 'bench' }], Topics: [{ Name: 'bench-topic', Subscriptions: [{ Name: 'bench-sub' }] }] }] } }),
  );
  const azure = new LocalAzureProcess({
    home,
    deleteHomeOnStop: true,
    config: { network: { ports: { identity, login, management, serviceBus } }, resources: { serviceBus: { topologyFile } } },
  });
  await azure.start();
  const clients: ServiceBusClient[] = [];
  try {
    const granted = await azure.run(['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Owner', '--scope', 'serviceBus']);
    if (granted.code !== 0) throw new Error(granted.stderr);
    const env = azure.enterHost('gateway');
    const namespace = env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!;
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    const admin = new ServiceBusAdministrationClient(namespace, credential);
    const client = new ServiceBusClient(namespace, credential);
    clients.push(client);
    for (let i = 0; i < settings.listedQueues; i++) await admin.createQueue(`listed-${String(i).padStart(3, '0')}`);
    await client.createSender('bench').sendMessages({ body: 'counted' });
    const queue = await admin.getQueue('bench');
    const rules = client.createRuleManager('bench-topic', 'bench-sub');
    await rules.listRules().next();

    const results: Record<string, { p50: number; p95: number; max: number }> = {};
    results['getNamespaceProperties'] = await measure(() => admin.getNamespaceProperties());
    results['getQueue'] = await measure(() => admin.getQueue('bench'));
    results['getQueueRuntimeProperties'] = await measure(() => admin.getQueueRuntimeProperties('bench'));
    results['queueExists (missing: empty feed)'] = await measure(() => admin.queueExists('missing'));
    results['updateQueue'] = await measure(() => admin.updateQueue(queue));
    results['createQueue'] = await measure((i) => admin.createQueue(`created-${i < 0 ? `w${-i}` : i}`));
    results['deleteQueue'] = await measure((i) => admin.deleteQueue(`created-${i < 0 ? `w${-i}` : i}`));
    results[`listQueues (one page of ${settings.listedQueues + 1})`] = await measure(async () => {
      const page = await admin.listQueues().byPage({ maxPageSize: 100 }).next();
      if (page.value.length < settings.listedQueues) throw new Error('short page');
    });
    results['createSubscription'] = await measure((i) => admin.createSubscription('bench-topic', `s-${i < 0 ? `w${-i}` : i}`));
    results['createRule (ATOM)'] = await measure((i) => admin.createRule('bench-topic', 'bench-sub', `atom-${i < 0 ? `w${-i}` : i}`, { sqlExpression: `n = ${i}` }));
    results['createRule ($management)'] = await measure((i) => rules.createRule(`amqp-${i < 0 ? `w${-i}` : i}`, { sqlExpression: `n = ${i}` }));
    results['deleteRule ($management)'] = await measure((i) => rules.deleteRule(`amqp-${i < 0 ? `w${-i}` : i}`));
    results['listRules ($management, first page)'] = await measure(() => rules.listRules().byPage({ maxPageSize: 100 }).next());
    // A new AMQP connection goes through the first-byte routing: open one and send one message.
    results['new connection + first send'] = await measure(async () => {
      const fresh = new ServiceBusClient(namespace, credential);
      await fresh.createSender('bench').sendMessages({ body: 'hello' });
      await fresh.close();
    }, settings.connections);

    const width = Math.max(...Object.keys(results).map((name) => name.length));
    process.stdout.write(`${'call'.padEnd(width)}  ${'p50 ms'.padStart(8)}  ${'p95 ms'.padStart(8)}  ${'max ms'.padStart(8)}\n`);
    for (const [name, { p50, p95, max }] of Object.entries(results)) {
      process.stdout.write(`${name.padEnd(width)}  ${String(p50).padStart(8)}  ${String(p95).padStart(8)}  ${String(max).padStart(8)}\n`);
    }
    process.stdout.write(`${JSON.stringify({ calls: settings.calls, results })}\n`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await azure.stop();
  }
}

await main();
