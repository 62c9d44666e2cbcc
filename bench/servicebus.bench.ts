// Benchmark of the local Service Bus with the unmodified @azure/service-bus client.
//
//   npx nx run-many -t build && npx node bench/servicebus.bench.ts [--quick] [--cpu-prof <dir>]
//
// Before/after in one run: npx node bench/paired.bench.ts --baseline-ref <commit> -- bench/servicebus.bench.ts
// `--cpu-prof <dir>`: the local Azure writes a CPU profile there; each scenario's window is printed on stderr.
//
// Runs the local Azure CLI (built dist/) in a child process with persistence on (the message journal; the
// target keeps its old label "SQLite, WAL" so that paired runs against earlier commits still match), and, for
// comparison, a broker that acknowledges and discards every send and serves receivers synthetic
// messages (the ceiling of the SDK client on this machine). Both run in their own process, as a real
// broker would. Prints a table and a JSON line; docs/servicebus.md records the numbers.
import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusMessage, type ServiceBusReceivedMessage } from '@azure/service-bus';
import rhea from 'rhea';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, trustCa } from '@keyless/local-azure/testing';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const cli = join(repoRoot, 'tools/local-azure/dist/main.js');
const quick = process.argv.includes('--quick');
// `--cpu-prof <dir>`: the local Azure writes a V8 CPU profile there when it stops.
const cpuProfileDir = process.argv.includes('--cpu-prof') ? process.argv[process.argv.indexOf('--cpu-prof') + 1] : undefined;
const localAzureNodeArgs = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
const settings = {
  latencySends: quick ? 300 : 2000,
  warmupSends: 100,
  throughputMessages: quick ? 1000 : 6000,
  sendOnlyMessages: quick ? 2000 : 20_000,
  batchSize: 100,
  rounds: quick ? 1 : 3,
};
const retryOptions = { retryOptions: { maxRetries: 0, timeoutInMs: 20_000 } };

/** A ~450-byte message, like the services' requests. */
function message(i: number): ServiceBusMessage {
  return {
    body: { requestId: randomUUID(), productId: `product-${i}`, query: 'x'.repeat(300), page: 1 },
    subject: 'recommendation.recommend',
    messageId: `bench-${i}-${randomUUID()}`,
    applicationProperties: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', attempt: 1 },
  };
}

// ---------------------------------------------------------------------------------------------------
// The ceiling broker: acknowledges and discards, serves synthetic messages (runs as a child process).

function runDiscardBroker(port: number, certFile: string, keyFile: string): void {
  const container = rhea.create_container({ id: 'discard-broker', autoaccept: false, treat_modified_as_released: false });
  (container.sasl_server_mechanisms as { enable_anonymous(): void }).enable_anonymous();
  const sent = new WeakMap<object, number>();
  let sequenceNumber = 0;
  type Link = rhea.Sender & { credit: number; delivery_count: number; local: { attach: Record<string, unknown> } };
  const echo = (link: Link): void => {
    link.local.attach.snd_settle_mode = link.snd_settle_mode;
    link.local.attach.rcv_settle_mode = link.rcv_settle_mode;
    link.set_source({ address: link.source?.address ?? '' });
    link.set_target({ address: link.target?.address ?? '' });
  };
  const isEntity = (address: string | undefined): boolean => !!address && address !== '$cbs' && !address.endsWith('$management');
  const fill = (sender: Link): void => {
    if (!isEntity(sender.source?.address) || !sender.is_open()) return;
    const limit = sender.credit + sender.delivery_count;
    let count = sent.get(sender) ?? 0;
    const now = Date.now();
    while (count < limit) {
      const lock = randomUUID();
      const tag = Buffer.from(lock.replace(/-/g, ''), 'hex');
      sender.send(
        {
          message_id: `synthetic-${++sequenceNumber}`,
          subject: 'recommendation.recommend',
          application_properties: { attempt: 1 },
          message_annotations: {
            'x-opt-sequence-number': rhea.types.wrap_long(sequenceNumber),
            'x-opt-enqueued-time': rhea.types.wrap_timestamp(now),
            'x-opt-locked-until': rhea.types.wrap_timestamp(now + 3_600_000),
          },
          body: rhea.message.data_section(Buffer.from(JSON.stringify({ productId: `product-${sequenceNumber}`, query: 'x'.repeat(300) }))),
        },
        tag,
      );
      count++;
    }
    sent.set(sender, count);
  };
  container.on('receiver_open', (context: rhea.EventContext) => echo(context.receiver as unknown as Link));
  container.on('sender_open', (context: rhea.EventContext) => echo(context.sender as unknown as Link));
  container.on('sender_flow', (context: rhea.EventContext) => fill(context.sender as unknown as Link));
  container.on('sendable', (context: rhea.EventContext) => fill(context.sender as unknown as Link));
  container.on('message', (context: rhea.EventContext) => {
    context.delivery!.update(true, (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described());
    const receiver = context.receiver!;
    if (receiver.target?.address !== '$cbs') return;
    const request = context.message!;
    const reply = context.connection.find_sender((s: rhea.Sender) => s.name === request.reply_to);
    reply?.send({ correlation_id: request.message_id, application_properties: { 'status-code': 202, 'status-description': 'Accepted' }, body: null });
  });
  for (const outcome of ['accepted', 'modified', 'rejected', 'released']) {
    container.on(outcome, (context: rhea.EventContext) => {
      if (!context.delivery!.settled) context.delivery!.update(true, (rhea.message as unknown as { accepted(): { described(): unknown } }).accepted().described());
    });
  }
  for (const event of ['error', 'disconnected', 'connection_error', 'sender_error', 'receiver_error', 'session_error', 'protocol_error']) container.on(event, () => undefined);
  const tls = { transport: 'tls' as const, cert: readFileSync(certFile), key: readFileSync(keyFile), port };
  container.listen({ ...tls, host: '127.0.0.1' } as unknown as Parameters<typeof container.listen>[0]);
  container.listen({ ...tls, host: '::1' } as unknown as Parameters<typeof container.listen>[0]);
  process.stdout.write('discard broker ready\n');
}

// ---------------------------------------------------------------------------------------------------
// Harness

interface Child {
  process: ChildProcess;
  output: () => string;
}

function startChild(args: string[], env: Record<string, string>, ready: string): Promise<Child & { startedInMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(ready)) resolve({ process: child, output: () => output, startedInMs: performance.now() - started });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready:\n${output}`)));
  });
}

function stopChild(child: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.process.exitCode !== null) return resolve();
    child.process.once('exit', () => resolve());
    child.process.kill(signal);
  });
}

function rssInMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number, digits = 0): number => Math.round(value * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------------
// Workloads

async function sendLatency(client: ServiceBusClient): Promise<{ p50: number; p99: number; perSecond: number }> {
  const sender = client.createSender('bench');
  for (let i = 0; i < settings.warmupSends; i++) await sender.sendMessages(message(i));
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < settings.latencySends; i++) {
    const t = performance.now();
    await sender.sendMessages(message(i));
    times.push(performance.now() - t);
  }
  const elapsed = performance.now() - started;
  await sender.close();
  times.sort((a, b) => a - b);
  return { p50: round(percentile(times, 50), 2), p99: round(percentile(times, 99), 2), perSecond: round((settings.latencySends / elapsed) * 1000) };
}

async function sendOnly(client: ServiceBusClient): Promise<number> {
  const sender = client.createSender('bench');
  const batch = Array.from({ length: settings.batchSize }, (_, i) => message(i));
  const started = performance.now();
  for (let sent = 0; sent < settings.sendOnlyMessages; sent += settings.batchSize) await sender.sendMessages(batch);
  const elapsed = performance.now() - started;
  await sender.close();
  return round((settings.sendOnlyMessages / elapsed) * 1000);
}

/** Producer sends batches while `receivers` peekLock receivers complete each message; msg/s end to end. */
async function sendReceiveComplete(producer: ServiceBusClient, consumer: ServiceBusClient, receivers: number): Promise<number> {
  const total = settings.throughputMessages;
  let completed = 0;
  const started = performance.now();
  const subscriptions: { close(): Promise<void> }[] = [];
  const done = new Promise<void>((resolve, reject) => {
    for (let r = 0; r < receivers; r++) {
      const receiver = consumer.createReceiver('bench');
      subscriptions.push(
        receiver.subscribe(
          {
            processMessage: async (received: ServiceBusReceivedMessage) => {
              await receiver.completeMessage(received);
              if (++completed === total) resolve();
            },
            processError: async ({ error }) => reject(error),
          },
          { autoCompleteMessages: false, maxConcurrentCalls: 1 },
        ),
      );
    }
  });
  const sender = producer.createSender('bench');
  for (let sent = 0; sent < total; sent += settings.batchSize) {
    await sender.sendMessages(Array.from({ length: Math.min(settings.batchSize, total - sent) }, (_, i) => message(sent + i)));
  }
  await done;
  const elapsed = performance.now() - started;
  await Promise.all(subscriptions.map((s) => s.close()));
  await sender.close();
  return round((total / elapsed) * 1000);
}

async function drainQueue(client: ServiceBusClient): Promise<void> {
  const receiver = client.createReceiver('bench', { receiveMode: 'receiveAndDelete' });
  while ((await receiver.receiveMessages(500, { maxWaitTimeInMs: 300 })).length);
  await receiver.close();
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'servicebus-bench-'));
  const [identity, login, management, serviceBus, discardPort] = await freePorts(5);
  const topologyFile = join(home, 'bench-topology.json');
  writeFileSync(topologyFile, JSON.stringify({ UserConfig: { Namespaces: [{ Name: 'bench', Queues: [{ Name: 'bench', Properties: { LockDuration: 'PT5M' } }] }] } }));
  const configFile = join(home, 'bench-config.json');
  writeFileSync(configFile, JSON.stringify({ network: { ports: { identity, login, management, serviceBus } }, resources: { serviceBus: { topologyFile } } }));
  const env = { LOCAL_AZURE_HOME: home };
  const children: Child[] = [];
  try {
    const cold = await startChild([cli, 'start', '--config', configFile], env, 'Local Azure ready in');
    await stopChild(cold);
    const warm = await startChild([...localAzureNodeArgs, cli, 'start', '--config', configFile], env, 'Local Azure ready in');
    children.push(warm);
    const readyIn = (child: Child): number => Number(/Local Azure ready in (\d+) ms/.exec(child.output())![1]);
    const idleRssAfterStart = rssInMb(warm.process.pid!);
    await startChild([cli, 'role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Owner', '--scope', 'serviceBus'], env, 'Azure Service Bus Data Owner');

    const hostEnv = Object.fromEntries(
      readFileSync(join(home, 'env', 'gateway.env'), 'utf8')
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    Object.assign(process.env, hostEnv);
    trustCa(readFileSync(hostEnv.NODE_EXTRA_CA_CERTS!, 'utf8'));
    const credential = new ManagedIdentityCredential({ clientId: hostEnv.AZURE_CLIENT_ID! });
    const discard = await startChild(
      [fileURLToPath(import.meta.url), 'discard-broker', String(discardPort), join(home, 'tls', 'server.pem'), join(home, 'tls', 'server-key.pem')],
      {},
      'discard broker ready',
    );
    children.push(discard);
    const fakeCredential = { getToken: async () => ({ token: 'not-checked-by-the-discard-broker', expiresOnTimestamp: Date.now() + 3_600_000 }) };

    const targets = [
      { name: 'local Service Bus (SQLite, WAL)', namespace: hostEnv.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, durable: true },
      { name: 'discard broker (SDK ceiling)', namespace: `localhost:${discardPort}`, credential: fakeCredential, durable: false },
    ].map((target) => ({
      ...target,
      producer: new ServiceBusClient(target.namespace, target.credential, retryOptions),
      consumer: new ServiceBusClient(target.namespace, target.credential, retryOptions),
    }));
    type Target = (typeof targets)[number];
    const scenarios: [string, (target: Target) => Promise<Record<string, number>>][] = [
      [
        'sequential sends',
        async (t) => {
          const latency = await sendLatency(t.producer);
          return { 'send p50 ms': latency.p50, 'send p99 ms': latency.p99, 'sequential sends/s': latency.perSecond };
        },
      ],
      ['batched sends', async (t) => ({ 'batched sends/s (100/batch)': await sendOnly(t.producer) })],
      [
        '1 receiver',
        async (t) => ({ 'send→receive→complete msg/s, 1 receiver': await sendReceiveComplete(t.producer, t.consumer, 1) }),
      ],
      [
        '8 receivers',
        async (t) => ({ 'send→receive→complete msg/s, 8 receivers': await sendReceiveComplete(t.producer, t.consumer, 8) }),
      ],
    ];
    // The machine is shared: targets alternate within each round and the median of the rounds counts.
    const samples = new Map<string, Map<string, number[]>>(targets.map((t) => [t.name, new Map()]));
    for (const [name, run] of scenarios) {
      for (let round = 0; round < settings.rounds; round++) {
        for (const target of targets) {
          process.stderr.write(`  ${name} — ${target.name} — round ${round + 1}\n`);
          const from = process.hrtime.bigint() / 1000n;
          const measured = await run(target);
          // On the monotonic clock in µs, that of V8's CPU profiles: cuts a profile to one scenario.
          if (cpuProfileDir && target.durable) process.stderr.write(`profile window ${name}: ${from} ${process.hrtime.bigint() / 1000n}\n`);
          // Keep the local queue empty between runs (a backlog would skew later runs and the memory reading).
          if (target.durable) await drainQueue(target.consumer);
          for (const [metric, value] of Object.entries(measured)) {
            const values = samples.get(target.name)!.get(metric) ?? [];
            samples.get(target.name)!.set(metric, [...values, value]);
          }
        }
      }
    }
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const results: Record<string, Record<string, number>> = Object.fromEntries(
      [...samples].map(([name, metrics]) => [name, Object.fromEntries([...metrics].map(([metric, values]) => [metric, median(values)]))]),
    );
    for (const target of targets) {
      await target.producer.close();
      await target.consumer.close();
    }
    const local = results[targets[0]!.name]!;
    const ceiling = results[targets[1]!.name]!;
    const rssRightAfterLoad = rssInMb(warm.process.pid!);
    // The broker gives memory back once it has been quiet for a few seconds: watch it settle.
    const idleSince = performance.now();
    let idleRssAfterLoad = rssRightAfterLoad;
    while (performance.now() - idleSince < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      idleRssAfterLoad = rssInMb(warm.process.pid!);
    }

    const rows = Object.keys(local).map((metric) => {
      const higherIsBetter = !metric.endsWith(' ms');
      const ratio = higherIsBetter ? local[metric]! / ceiling[metric]! : ceiling[metric]! / local[metric]!;
      return { metric, local: local[metric], ceiling: ceiling[metric], 'ratio (goal ≥ 0.5)': round(ratio, 2) };
    });
    process.stdout.write(
      `\nLocal Service Bus benchmark (${quick ? 'quick' : 'full'} run, Node ${process.version}, median of ${settings.rounds} rounds, ${settings.throughputMessages} messages per throughput run)\n`,
    );
    console.table(rows);
    const startup = { 'cold start ms (CLI reports)': readyIn(cold), 'warm start ms (CLI reports)': readyIn(warm), 'warm start ms (process spawn → ready)': round(warm.startedInMs) };
    console.table([startup]);
    const memory = {
      'idle RSS after start MB': idleRssAfterStart,
      'RSS right after the runs MB': rssRightAfterLoad,
      'idle RSS 20 s after the runs MB': idleRssAfterLoad,
      'goal MB': 150,
    };
    console.table([memory]);
    // Local / ceiling per metric (for latencies ceiling / local): the ratios the goals are stated in.
    const ratios = Object.fromEntries(rows.map((row) => [row.metric, row['ratio (goal ≥ 0.5)']]));
    process.stdout.write(`${JSON.stringify({ results, ratios, startup, memory })}\n`);
  } finally {
    for (const child of children) await stopChild(child);
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'discard-broker') runDiscardBroker(Number(process.argv[3]), process.argv[4]!, process.argv[5]!);
else
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
