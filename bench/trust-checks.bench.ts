// The cost of the trust-boundary checks, paired in one run, and how fast a revoke reaches open links.
//
//   npx nx run-many -t build
//   npx node bench/trust-checks.bench.ts --baseline-ref <commit before the checks> [--quick]
//   npx node bench/trust-checks.bench.ts --baseline <folder with a built checkout> [--quick]
//
// 1. Cost (goal: ≤ 5 %): Service Bus sends/s (one send awaited at a time, and 32 in flight) and Azure OpenAI
//    embeddings requests/s, each against the local Azure CLI of this checkout ("current") and of the baseline,
//    alternating rounds (baseline, current, baseline, …) so machine noise hits both alike; medians of the
//    rounds. The re-checks have no off switch (a switch that only benchmarks use would measure nothing real),
//    so the baseline is another build: `--baseline-ref` exports that commit with `git archive` into
//    $TMPDIR/keyless-bench-baseline-<sha>, runs `npm ci` and builds the local Azure there (reused by later runs).
// 2. Revoke-to-refusal latency on open links (current only; the baseline never refuses an open link): from the
//    revoke request (admin API, what `npm run local-azure -- role assignment delete` sends) to the first refused
//    send of a sender that keeps sending, and to `processError` of a subscribed receiver; and, with
//    `reauthorizationIntervalInSeconds: 2`, for a revoke written to the database behind the local Azure's back
//    (only the periodic re-check sees it). p50 and max.
//
// Every client is the unmodified SDK in a child process of its own that starts with the host's env file
// (NODE_EXTRA_CA_CERTS must be set before Node starts; @azure/identity picks its endpoint once per process).
// Prints a table and one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusError } from '@azure/service-bus';
import { AzureOpenAI } from 'openai';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const script = fileURLToPath(import.meta.url);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean' }, baseline: { type: 'string' }, 'baseline-ref': { type: 'string' } },
});
const quick = values.quick === true;
const settings = {
  rounds: quick ? 1 : 3,
  sequentialSends: quick ? 300 : 3000,
  concurrentSends: quick ? 1000 : 10_000,
  inFlight: 32,
  openAiRequests: quick ? 100 : 1000,
  openAiConcurrency: 4,
  revokeSamples: quick ? 5 : 30,
  periodicSamples: quick ? 2 : 10,
  periodicIntervalInSeconds: 2,
};
const retryOptions = { retryOptions: { maxRetries: 0, retryDelayInMs: 100, timeoutInMs: 20_000 } };

// ---------------------------------------------------------------------------------------------------
// Workers (child processes): one measurement each, one JSON line on stdout.

async function worker(kind: string, args: string[]): Promise<unknown> {
  const credential = new ManagedIdentityCredential({ clientId: process.env.AZURE_CLIENT_ID! });
  const namespace = process.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!;
  if (kind === 'sends') {
    const client = new ServiceBusClient(namespace, credential, retryOptions);
    const sender = client.createSender('bench');
    const body = { productId: 'p-1', query: 'x'.repeat(300) };
    for (let i = 0; i < 100; i++) await sender.sendMessages({ body });
    let started = performance.now();
    for (let i = 0; i < settings.sequentialSends; i++) await sender.sendMessages({ body });
    const sequential = (settings.sequentialSends / (performance.now() - started)) * 1000;
    started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: settings.inFlight }, async () => {
        while (next++ < settings.concurrentSends) await sender.sendMessages({ body });
      }),
    );
    const concurrent = (settings.concurrentSends / (performance.now() - started)) * 1000;
    await client.close();
    return { sequential, concurrent };
  }
  if (kind === 'openai') {
    const openAi = new AzureOpenAI({ azureADTokenProvider: getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default'), maxRetries: 0 });
    const model = process.env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!;
    for (let i = 0; i < 20; i++) await openAi.embeddings.create({ model, input: 'warm up' });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: settings.openAiConcurrency }, async () => {
        while (next++ < settings.openAiRequests) await openAi.embeddings.create({ model, input: `waterproof trail running shoe #${next}` });
      }),
    );
    return { requestsPerSecond: (settings.openAiRequests / (performance.now() - started)) * 1000 };
  }
  if (kind === 'revoke') return revokeLatencies(credential, namespace, args[0]!, args[1] === 'periodic');
  throw new Error(`unknown worker ${kind}`);
}

/**
 * Revokes Data Sender and Data Receiver on the "revocable" queue `samples` times while a sender keeps
 * sending and a receiver is subscribed; measures from the revoke to the first refused send and to the
 * receiver's processError. `periodic`: the revoke is a row deleted in the database (no listener hears it).
 */
async function revokeLatencies(credential: ManagedIdentityCredential, namespace: string, home: string, periodic: boolean): Promise<unknown> {
  const { AdminClient } = (await import(join(repoRoot, 'tools/local-azure/dist/cli/admin-client.js'))) as typeof import('../tools/local-azure/src/cli/admin-client.js');
  const { LocalAzureHome } = (await import(join(repoRoot, 'tools/local-azure/dist/home.js'))) as typeof import('../tools/local-azure/src/home.js');
  // Acts as the CLI's signed-in operator, as `npm run local-azure -- role assignment delete` does.
  const admin = AdminClient.forHome(new LocalAzureHome(home)).client;
  const scope = `${process.env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/queues/revocable`;
  const roles = ['Azure Service Bus Data Sender', 'Azure Service Bus Data Receiver'];
  const grant = async (): Promise<void> => {
    for (const role of roles) await admin.call('POST', '/roleAssignments', { assignee: 'id-keyless', role, scope });
  };
  const revoke = async (): Promise<void> => {
    if (!periodic) {
      await admin.call('DELETE', `/roleAssignments?${new URLSearchParams({ assignee: 'id-keyless', scope })}`);
      return;
    }
    const db = new DatabaseSync(join(home, 'data', 'local-azure.db'));
    db.exec('PRAGMA busy_timeout = 5000');
    db.prepare('DELETE FROM role_assignments WHERE scope = ?').run(scope);
    db.close();
  };
  const client = new ServiceBusClient(namespace, credential, { retryOptions: { maxRetries: 0, retryDelayInMs: 50, timeoutInMs: 10_000 } });
  const sends: number[] = [];
  const receives: number[] = [];
  const samples = periodic ? settings.periodicSamples : settings.revokeSamples;
  for (let sample = 0; sample < samples; sample++) {
    await grant();
    const sender = client.createSender('revocable');
    await sender.sendMessages({ body: 'warm' });
    let receiverRefusedAt: number | undefined;
    const attached = new Promise<void>((resolveAttached) => {
      const subscription = client.createReceiver('revocable', { receiveMode: 'receiveAndDelete' }).subscribe({
        processMessage: async () => resolveAttached(),
        processError: async ({ error }) => {
          if ((error as ServiceBusError).code === 'UnauthorizedAccess' && receiverRefusedAt === undefined) {
            receiverRefusedAt = performance.now();
            void subscription.close();
          }
        },
      });
    });
    await sender.sendMessages({ body: 'attach' });
    await attached;
    const revokedAt = performance.now();
    await revoke();
    let senderRefusedAt: number | undefined;
    while (senderRefusedAt === undefined) {
      try {
        await sender.sendMessages({ body: 'until refused' });
      } catch (error) {
        if ((error as ServiceBusError).code === 'UnauthorizedAccess') senderRefusedAt = performance.now();
      }
    }
    while (receiverRefusedAt === undefined) await sleep(5);
    sends.push(senderRefusedAt - revokedAt);
    receives.push(receiverRefusedAt - revokedAt);
    await sender.close();
  }
  await client.close();
  return { sends, receives };
}

// ---------------------------------------------------------------------------------------------------
// The orchestrator.

interface Tree {
  name: 'baseline' | 'current';
  root: string;
}

interface RunningAzure {
  home: string;
  envFile: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

function readEnv(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): string {
  return execFileSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** The baseline checkout: `--baseline` as given, or `--baseline-ref` exported, installed and built (once). */
function baselineTree(): Tree {
  if (values.baseline) return { name: 'baseline', root: resolve(values.baseline) };
  const ref = values['baseline-ref'];
  if (!ref) throw new Error('give --baseline-ref <commit before the checks> or --baseline <built checkout> (see the header of this file)');
  const sha = run('git', ['rev-parse', '--verify', `${ref}^{commit}`], repoRoot).trim();
  const root = join(tmpdir(), `keyless-bench-baseline-${sha.slice(0, 12)}`);
  if (!existsSync(join(root, 'tools/local-azure/dist/main.js'))) {
    process.stderr.write(`preparing the baseline ${sha.slice(0, 12)} in ${root} (npm ci and a build, once)…\n`);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C '${root}'`], { cwd: repoRoot, stdio: 'inherit' });
    run('npm', ['ci', '--no-audit', '--no-fund'], root);
    run('npx', ['nx', 'run', 'local-azure:build', '--skip-nx-cache'], root, { NX_DAEMON: 'false' });
  }
  return { name: 'baseline', root };
}

async function startLocalAzure(tree: Tree, extraServiceBus: Record<string, unknown> = {}): Promise<RunningAzure> {
  const home = mkdtempSync(join(tmpdir(), `bench-trust-${tree.name}-`));
  const topologyFile = join(home, 'topology.json');
  writeFileSync(topologyFile, JSON.stringify({ UserConfig: { Namespaces: [{ Name: 'bench', Queues: [{ Name: 'bench', Properties: { DefaultMessageTimeToLive: 'PT1M' } }, { Name: 'revocable', Properties: {} }] }] } }));
  const config = join(home, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      resources: {
        serviceBus: { topologyFile, ...extraServiceBus },
        openAi: { name: 'oai-keyless-local', deployments: { 'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 1_000_000_000 } } },
      },
    }),
  );
  const cli = join(tree.root, 'tools/local-azure/dist/main.js');
  const child = spawn(process.execPath, [cli, 'start', '--config', config], { env: { ...process.env, LOCAL_AZURE_HOME: home }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const envFile = join(home, 'env', 'gateway.env');
  const deadline = Date.now() + 60_000;
  while (!existsSync(envFile)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the ${tree.name} local Azure did not become ready`);
    await sleep(50);
  }
  run(process.execPath, [cli, 'role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Sender', '--scope', `${readEnv(envFile).SERVICEBUS_NAMESPACE_RESOURCE_ID}/queues/bench`], repoRoot, { LOCAL_AZURE_HOME: home });
  return {
    home,
    envFile,
    env: readEnv(envFile),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function measure<T>(azure: RunningAzure, kind: string, args: string[] = []): Promise<T> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, [script, 'worker', kind, ...args, ...(quick ? ['--quick'] : [])], {
      env: { ...process.env, ...azure.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolveResult(JSON.parse(output.trim().split('\n').at(-1)!) as T) : reject(new Error(`worker ${kind} exited with ${code}`))));
  });
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;
const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const trees: Tree[] = [baselineTree(), { name: 'current', root: repoRoot }];
  const azures = new Map<Tree['name'], RunningAzure>();
  const results = { baseline: { sequential: [] as number[], concurrent: [] as number[], openAi: [] as number[] }, current: { sequential: [] as number[], concurrent: [] as number[], openAi: [] as number[] } };
  let revoke: { sends: number[]; receives: number[] } | undefined;
  let periodic: { sends: number[]; receives: number[] } | undefined;
  try {
    for (const tree of trees) azures.set(tree.name, await startLocalAzure(tree));
    for (let round = 0; round < settings.rounds; round++) {
      for (const tree of trees) {
        const sends = await measure<{ sequential: number; concurrent: number }>(azures.get(tree.name)!, 'sends');
        results[tree.name].sequential.push(sends.sequential);
        results[tree.name].concurrent.push(sends.concurrent);
      }
      for (const tree of trees) results[tree.name].openAi.push((await measure<{ requestsPerSecond: number }>(azures.get(tree.name)!, 'openai')).requestsPerSecond);
    }
    const current = azures.get('current')!;
    revoke = await measure(current, 'revoke', [current.home, 'admin']);
    const slow = await startLocalAzure(trees[1]!, { reauthorizationIntervalInSeconds: settings.periodicIntervalInSeconds });
    try {
      periodic = await measure(slow, 'revoke', [slow.home, 'periodic']);
    } finally {
      await slow.stop();
    }
  } finally {
    for (const azure of azures.values()) await azure.stop();
  }
  const cost = (key: 'sequential' | 'concurrent' | 'openAi') => {
    const baseline = median(results.baseline[key]);
    const current = median(results.current[key]);
    return { baseline: round(baseline), current: round(current), ratio: round(current / baseline, 3) };
  };
  const latency = (samples: number[]) => ({ p50: round(percentile(samples, 50)), max: round(Math.max(...samples)) });
  const summary = {
    settings: { ...settings, quick },
    sendsPerSecondSequential: cost('sequential'),
    sendsPerSecondConcurrent: cost('concurrent'),
    openAiRequestsPerSecond: cost('openAi'),
    revokeToRefusalInMs: { sender: latency(revoke!.sends), receiver: latency(revoke!.receives) },
    periodicRevokeToRefusalInMs: { intervalInSeconds: settings.periodicIntervalInSeconds, sender: latency(periodic!.sends), receiver: latency(periodic!.receives) },
  };
  const rows = [
    ['Service Bus sends/s, one at a time', summary.sendsPerSecondSequential],
    [`Service Bus sends/s, ${settings.inFlight} in flight`, summary.sendsPerSecondConcurrent],
    [`Azure OpenAI embeddings requests/s, ${settings.openAiConcurrency} in flight`, summary.openAiRequestsPerSecond],
  ] as const;
  process.stdout.write(`\nCost of the checks (median of ${settings.rounds} paired round${settings.rounds === 1 ? '' : 's'}; goal: current ≥ 0.95 × baseline)\n`);
  for (const [name, r] of rows) process.stdout.write(`  ${name.padEnd(52)} baseline ${String(r.baseline).padStart(8)}  current ${String(r.current).padStart(8)}  ratio ${r.ratio}\n`);
  process.stdout.write(`\nRevoke to refusal on open links (${settings.revokeSamples} revokes through the admin API)\n`);
  process.stdout.write(`  sender (keeps sending)    p50 ${summary.revokeToRefusalInMs.sender.p50} ms   max ${summary.revokeToRefusalInMs.sender.max} ms\n`);
  process.stdout.write(`  receiver (subscribed)     p50 ${summary.revokeToRefusalInMs.receiver.p50} ms   max ${summary.revokeToRefusalInMs.receiver.max} ms\n`);
  process.stdout.write(`Revoke written behind the local Azure's back (${settings.periodicSamples} revokes; periodic re-check every ${settings.periodicIntervalInSeconds} s)\n`);
  process.stdout.write(`  sender                    p50 ${summary.periodicRevokeToRefusalInMs.sender.p50} ms   max ${summary.periodicRevokeToRefusalInMs.sender.max} ms\n`);
  process.stdout.write(`  receiver                  p50 ${summary.periodicRevokeToRefusalInMs.receiver.p50} ms   max ${summary.periodicRevokeToRefusalInMs.receiver.max} ms\n\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (positionals[0] === 'worker') {
  worker(positionals[1]!, positionals.slice(2)).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
