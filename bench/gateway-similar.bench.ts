// Similar-products requests through the whole chain — HTTP + caller token at the gateway, a request over
// Service Bus, the recommendation service ranking by vector similarity and asking (local) Azure OpenAI chat for
// the explanation, the reply back over the bus — against the same ranking called in-process with the same
// Azure OpenAI client. The ratio is what the gateway, the bus and auth cost. Besides req/s and latencies it prints
// the CPU milliseconds per request of every process (from /proc: the local Azure with its PostgreSQL engine, the
// services, this process) for both paths, and `cpuRatio` = in-process CPU / chain CPU: on a shared machine the
// CPU a request costs moves far less than req/s. Likewise per request and process: write and read system calls and
// the main thread's wake-ups.
//
//   npx nx run-many -t build && npx node bench/gateway-similar.bench.ts [--requests 2000] [--concurrency 32] [--cpu-prof <dir>] [--sched-trace <seconds>]
//
// `--sched-trace <seconds>` (needs perf and root; meant for --concurrency 1 with enough requests to outlast the trace)
// records the Linux scheduler for that long in each measurement and prints, step by step along one request, how long
// each process waited for a CPU and then ran (bench/support/scheduler-trace.ts). perf's start costs the first
// requests of each window some latency: read the traced run's tables, not its figures.
//
// Before/after in one run: npx node bench/paired.bench.ts --baseline-ref <commit> -- bench/gateway-similar.bench.ts --concurrency 32
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { AuthModule, AzureClientFactory } from '@keyless/auth';
import { demoCatalog, freePort, loadCatalog } from '@keyless/launcher';
import { trustCa } from '@keyless/local-azure/testing';
import { Database } from '@keyless/database';
import { openTestDatabase } from '@keyless/database/testing';
import { PostgresCatalogStore } from '@keyless/recommendation/dist/catalog/catalog.store.js';
import { EmbeddingsService } from '@keyless/recommendation/dist/ai/embeddings.service.js';
import { ExplanationsService } from '@keyless/recommendation/dist/ai/explanations.service.js';
import { RecommenderService } from '@keyless/recommendation/dist/recommender.service.js';
import { startUnthrottledSystem } from './support/unthrottled-system.ts';
import { criticalPath, parseTimehist, recordSchedulerTrace, waitsByProcess, type PathStep } from './support/scheduler-trace.ts';
import { measure } from './support/exact-ranking.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '32' }, 'cpu-prof': { type: 'string' }, 'sched-trace': { type: 'string' } } });
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const traceSeconds = values['sched-trace'] === undefined ? 0 : Number(values['sched-trace']);
if (values['sched-trace'] !== undefined && !(traceSeconds > 0 && traceSeconds <= 60)) throw new Error(`--sched-trace takes the seconds to trace, more than 0 and at most 60 (got "${values['sched-trace']}")`);

type Measured = Awaited<ReturnType<typeof measure>>;

/** Linux's clock ticks per second in /proc/<pid>/stat (USER_HZ, 100 on every common kernel). */
const ticksPerSecond = 100;

/** Every process on the machine by pid: its parent and the CPU seconds (user + system) it has used so far. */
function processTable(): Map<number, { parent: number; seconds: number }> {
  const stats = new Map<number, { parent: number; seconds: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // Fields after the command name (which may hold spaces): state, ppid, … utime (12th), stime (13th).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    stats.set(Number(entry), { parent: Number(fields[1]), seconds: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond });
  }
  return stats;
}

/**
 * CPU seconds (user + system) used so far by each of the system's processes with all their descendants (the local
 * Azure's PostgreSQL engine runs in a child of its own), and by this process (the load generator, the launcher
 * forwarding the services' logs, and the in-process path's own work).
 */
function cpuSeconds(system: { processes: ReadonlyMap<string, { child: { pid?: number } }> }): Record<string, number> {
  const stats = processTable();
  const treeSeconds = (root: number): number => {
    let total = stats.get(root)?.seconds ?? 0;
    for (const [pid, { parent }] of stats) if (parent === root) total += treeSeconds(pid);
    return total;
  };
  const usage = process.cpuUsage();
  const result: Record<string, number> = { bench: (usage.user + usage.system) / 1e6 };
  for (const [name, managed] of system.processes) if (managed.child.pid) result[name] = treeSeconds(managed.child.pid);
  return result;
}

/**
 * System calls and wake-ups so far of each of the system's processes and of this one: `write` and `read` calls (with
 * `writev`, `pwrite`, `readv`, …: `syscw` and `syscr` of `/proc/<pid>/io`, all threads) and the main thread's voluntary
 * context switches (each a sleep of its event loop, so each a wake-up to come); the local Azure without its PostgreSQL
 * engine, a child process of its own. On a machine where every system call
 * and every cross-process wake-up is dear, these say what a change saves far more steadily than latency does.
 */
function ioCounts(system: Parameters<typeof cpuSeconds>[0]): Record<string, { writes: number; reads: number; wakeUps: number }> {
  const read = (pid: number | 'self') => {
    try {
      const io = readFileSync(`/proc/${pid}/io`, 'utf8');
      const status = readFileSync(`/proc/${pid}/task/${pid === 'self' ? process.pid : pid}/status`, 'utf8');
      const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
      return { writes: field(io, 'syscw'), reads: field(io, 'syscr'), wakeUps: field(status, 'voluntary_ctxt_switches') };
    } catch {
      return { writes: NaN, reads: NaN, wakeUps: NaN }; // ended meanwhile
    }
  };
  const result: Record<string, { writes: number; reads: number; wakeUps: number }> = { bench: read('self') };
  for (const [name, managed] of system.processes) if (managed.child.pid) result[name] = read(managed.child.pid);
  return result;
}

/**
 * Runs `run` and returns its result with the CPU milliseconds per request each process spent meanwhile, and its write
 * and read system calls and main-thread wake-ups per request.
 */
async function withCpu(
  system: Parameters<typeof cpuSeconds>[0],
  run: () => Promise<Measured>,
): Promise<Measured & { cpuPerRequestInMs: Record<string, number>; writesPerRequest: Record<string, number>; readsPerRequest: Record<string, number>; wakeUpsPerRequest: Record<string, number> }> {
  const before = cpuSeconds(system);
  const countsBefore = ioCounts(system);
  const measured = await run();
  const after = cpuSeconds(system);
  const countsAfter = ioCounts(system);
  const cpuPerRequestInMs: Record<string, number> = {};
  for (const name of Object.keys(after)) cpuPerRequestInMs[name] = Math.round(((after[name]! - (before[name] ?? 0)) * 1000 * 1000) / requests) / 1000;
  cpuPerRequestInMs.total = Math.round(Object.values(cpuPerRequestInMs).reduce((a, b) => a + b, 0) * 1000) / 1000;
  const perRequest = (key: 'writes' | 'reads' | 'wakeUps') => {
    const counts: Record<string, number> = {};
    for (const name of Object.keys(countsAfter)) counts[name] = Math.round(((countsAfter[name]![key] - (countsBefore[name]?.[key] ?? NaN)) * 100) / requests) / 100;
    counts.total = Math.round(Object.values(counts).reduce((a, b) => a + b, 0) * 100) / 100;
    return counts;
  };
  return { ...measured, cpuPerRequestInMs, writesPerRequest: perRequest('writes'), readsPerRequest: perRequest('reads'), wakeUpsPerRequest: perRequest('wakeUps') };
}

/**
 * With `--cpu-prof`, prints when a measurement ran on the monotonic clock in µs (the clock of V8's CPU profiles, the
 * same in every process), so the profiles can be cut to that window.
 */
async function window<T extends Measured>(name: string, run: () => Promise<T>, steps: readonly PathStep[]): Promise<T> {
  const from = process.hrtime.bigint() / 1000n;
  const trace = traceSeconds > 0 ? recordSchedulerTrace(traceSeconds) : undefined;
  trace?.catch(() => undefined); // a failure (no perf, no permission) is thrown below, once the measurement is done
  const result = await run();
  if (values['cpu-prof']) console.error(`profile window ${name}: ${from} ${process.hrtime.bigint() / 1000n}`);
  if (trace) printSchedulerTrace(name, parseTimehist(await trace), steps, traceSeconds * result.perSecond);
  return result;
}

/** The processes by name for the scheduler trace: the system's, this one, and the local Azure's PostgreSQL engine. */
function processIds(): Map<string, number> {
  const pids = new Map<string, number>([['bench', process.pid]]);
  for (const [name, managed] of system.processes) if (managed.child.pid) pids.set(name, managed.child.pid);
  for (const [pid, { parent }] of processTable()) {
    if (parent !== pids.get('local-azure')) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pglite-engine')) pids.set('postgres', pid);
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

function printSchedulerTrace(name: string, events: ReturnType<typeof parseTimehist>, steps: readonly PathStep[], requestsTraced: number): void {
  const pids = processIds();
  const path = criticalPath(events, pids, steps);
  const ms = (value: number) => value.toFixed(3).padStart(7);
  console.log(`\n${name}: one request step by step (${path.requests} requests followed whole; ms)`);
  console.log(`${'step (the woken process runs until it wakes the next)'.padEnd(56)} delay p50   mean    run p50   mean`);
  for (const row of path.rows) console.log(`${row.label.padEnd(56)} ${ms(row.delayP50)} ${ms(row.delayMean)}   ${ms(row.runP50)} ${ms(row.runMean)}`);
  const sum = (key: 'delayMean' | 'runMean') => path.rows.reduce((total, row) => total + row[key], 0);
  console.log(`${'sum of the means'.padEnd(56)} ${''.padStart(7)} ${ms(sum('delayMean'))}   ${''.padStart(7)} ${ms(sum('runMean'))}`);
  console.log(`${name}: main threads' waits for a CPU, ms per request (${Math.round(requestsTraced)} requests traced)`);
  const per = (value: number) => (value / requestsTraced).toFixed(3);
  for (const row of waitsByProcess(events, pids)) {
    const behind = Object.entries(row.behind).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([other, value]) => `${other} ${per(value)}`).join(', ');
    console.log(`  ${row.name.padEnd(15)} ${per(row.delay)} in ${(row.wakeUps / requestsTraced).toFixed(1)} wake-ups: CPU waking ${per(row.cpuWaking)}; behind ${behind || '–'} (the other CPU idle meanwhile ${per(row.otherCpuIdle)})`);
  }
}

/** The similar-products request through the chain, process to process (the main thread of each). */
const chainSteps: PathStep[] = [
  { from: 'bench', to: 'gateway', label: 'bench → gateway: HTTP request → bus send' },
  { from: 'gateway', to: 'local-azure', label: 'gateway → broker: request stored, delivered' },
  { from: 'local-azure', to: 'recommendation', label: 'broker → recommendation: request → catalog query' },
  { from: 'recommendation', to: 'local-azure', label: 'recommendation → PostgreSQL front end' },
  { from: 'local-azure', to: 'postgres', label: 'front end → engine: the query' },
  { from: 'postgres', to: 'local-azure', label: 'engine → front end: rows' },
  { from: 'local-azure', to: 'recommendation', label: 'front end → recommendation: rows → chat request' },
  { from: 'recommendation', to: 'local-azure', label: 'recommendation → Azure OpenAI: chat completion' },
  { from: 'local-azure', to: 'recommendation', label: 'Azure OpenAI → recommendation: answer → reply sent' },
  { from: 'recommendation', to: 'local-azure', label: 'recommendation → broker: reply stored, delivered' },
  { from: 'local-azure', to: 'gateway', label: 'broker → gateway: reply → HTTP response' },
  { from: 'gateway', to: 'bench', label: 'gateway → bench: response read, next request sent' },
];

/** The same ranking and explanation called in this process. */
const inProcessSteps: PathStep[] = [
  { from: 'bench', to: 'local-azure', label: 'bench → PostgreSQL front end' },
  { from: 'local-azure', to: 'postgres', label: 'front end → engine: the query' },
  { from: 'postgres', to: 'local-azure', label: 'engine → front end: rows' },
  { from: 'local-azure', to: 'bench', label: 'front end → bench: rows → chat request' },
  { from: 'bench', to: 'local-azure', label: 'bench → Azure OpenAI: chat completion' },
  { from: 'local-azure', to: 'bench', label: 'Azure OpenAI → bench: answer → next catalog query' },
];

const home = mkdtempSync(join(tmpdir(), 'bench-gateway-'));
const [gatewayPort, imagePort] = [await freePort(), await freePort()];
const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images` });
const system = await startUnthrottledSystem({
  home,
  gatewayPort,
  catalog,
  imagePort,
  // `--cpu-prof <dir>`: every process writes a V8 CPU profile there when it stops.
  ...(values['cpu-prof'] ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] } : {}),
});
try {
  // Tokens for the storefront straight from its host's identity endpoint (one request, as the SDK makes):
  // @azure/identity binds a process to one managed-identity endpoint, and this process later acts as the
  // recommendation host for the in-process measurement.
  const storefrontEnv = system.hostEnv('storefront');
  const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'api://keyless-gateway', client_id: storefrontEnv.AZURE_CLIENT_ID! });
  const { access_token: token } = (await (await fetch(`${storefrontEnv.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': storefrontEnv.IDENTITY_HEADER! } })).json()) as { access_token: string };
  const storefront = {
    fetch: (path: string, init: RequestInit = {}) =>
      fetch(`${system.gatewayUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}) } }),
  };
  await loadCatalog(storefront as never, catalog);
  const ids = catalog.filter((p) => p.product.available).map((p) => p.product.id);

  // Warm up both paths (token caches, JIT, the database's pages), then measure.
  const throughGateway = async (i: number) => {
    const response = await storefront.fetch(`/v1/products/${ids[i % ids.length]}/similar?limit=5`);
    if (response.status !== 200) throw new Error(`gateway answered ${response.status}`);
    await response.arrayBuffer();
  };
  for (let i = 0; i < 64; i++) await throughGateway(i);
  const chain = await window('chain', () => withCpu(system, () => measure(requests, concurrency, throughGateway)), chainSteps);

  // The same ranking in this process: the recommendation service's own classes on the same shared database (the
  // catalog is in PostgreSQL), with an Azure OpenAI client from @keyless/auth acting as the recommendation host.
  const env = system.hostEnv('recommendation');
  Object.assign(process.env, { IDENTITY_ENDPOINT: env.IDENTITY_ENDPOINT, IDENTITY_HEADER: env.IDENTITY_HEADER });
  trustCa(await (await import('node:fs/promises')).readFile(env.NODE_EXTRA_CA_CERTS!, 'utf8'));
  const auth = await NestFactory.createApplicationContext(
    AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: ['cognitiveServices'], resources: { openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT! } } }),
    { logger: false },
  );
  const openai = auth.get(AzureClientFactory).create('openAi');
  const config = { deployments: { chat: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, embeddings: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT! }, embeddingDimensions: 256 };
  const database = await openTestDatabase(env);
  const store = new PostgresCatalogStore(database.pool);
  const recommender = new RecommenderService(
    store,
    new EmbeddingsService(openai, config as never),
    new ExplanationsService(openai, config as never),
    new Database({ pool: database.pool, schemas: [] }),
  );
  const inProcess = async (i: number) => {
    await recommender.similar({ productId: ids[i % ids.length]!, limit: 5, filters: {} });
  };
  for (let i = 0; i < 64; i++) await inProcess(i);
  const direct = await window('in-process', () => withCpu(system, () => measure(requests, concurrency, inProcess)), inProcessSteps);

  const row = (name: string, m: Measured) => `${name.padEnd(38)} ${m.perSecond.toFixed(0).padStart(8)} ${m.p50.toFixed(1).padStart(8)} ${m.p99.toFixed(1).padStart(8)}`;
  console.log(`similar products, ${requests} requests at concurrency ${concurrency} (${ids.length} products indexed)`);
  console.log(`${'path'.padEnd(38)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
  console.log(row('HTTP → gateway → bus → recommendation', chain));
  console.log(row('in-process ranking + explanation', direct));
  console.log(`ratio (chain / in-process throughput): ${(chain.perSecond / direct.perSecond).toFixed(2)}`);
  console.log(`p50 overhead (chain − in-process): ${(chain.p50 - direct.p50).toFixed(2)} ms`);
  // CPU per request of every process (all four share two cores, so this bounds throughput and is far less
  // sensitive to other load on the machine than req/s): the chain's CPU against the in-process path's.
  const cpuRatio = direct.cpuPerRequestInMs.total! / chain.cpuPerRequestInMs.total!;
  console.log(`CPU ms per request, chain: ${JSON.stringify(chain.cpuPerRequestInMs)}; in-process: ${JSON.stringify(direct.cpuPerRequestInMs)}; ratio (in-process / chain): ${cpuRatio.toFixed(2)}`);
  console.log(`write system calls per request, chain: ${JSON.stringify(chain.writesPerRequest)}; in-process: ${JSON.stringify(direct.writesPerRequest)}`);
  console.log(`read system calls per request, chain: ${JSON.stringify(chain.readsPerRequest)}; in-process: ${JSON.stringify(direct.readsPerRequest)}`);
  console.log(`main-thread wake-ups per request, chain: ${JSON.stringify(chain.wakeUpsPerRequest)}; in-process: ${JSON.stringify(direct.wakeUpsPerRequest)}`);
  // The two goals of issue 17 as numbers of their own: throughput ratio (at concurrency 32) and p50 overhead (at 1).
  console.log(JSON.stringify({ requests, concurrency, chain, inProcess: direct, ratio: chain.perSecond / direct.perSecond, p50OverheadInMs: chain.p50 - direct.p50, cpuRatio }));
  await database.close();
  await auth.close();
  await system.stop();
  rmSync(home, { recursive: true, force: true });
} catch (error) {
  console.error(`failed; logs kept in ${join(home, 'logs')}`);
  await system.stop();
  throw error;
}
