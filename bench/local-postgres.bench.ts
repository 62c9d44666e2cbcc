// Benchmark of the local Azure Database for PostgreSQL (PGlite behind the Entra-auth front end) with node-postgres.
//
//   npx nx run-many -t build && npx node bench/local-postgres.bench.ts [--quick]
//
// Paired in one run:
// 1. Login: a new pg connection (TCP, TLS, the token check, attaching to the shared session), token cached.
// 2. Round trip of `SELECT $1` through the front end (one client), against PGlite called in-process (the floor:
//    no socket, no TLS, no process boundary).
// 3. The hand-over: two clients alternating one statement each (every statement passes the session to the other
//    connection: DISCARD ALL + the role and settings) against one client doing the same work.
// 4. What a heavy query does to the event loop it shares with the Service Bus broker and the identity endpoint: the
//    engine in its child process (the local Azure as it runs) against PGlite on the main thread.
// Prints one JSON line; docs/local-azure.md explains the design the numbers test.
import { ManagedIdentityCredential } from '@azure/identity';
import { PGlite } from '@electric-sql/pglite';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure } from '@keyless/local-azure/testing';

const quick = process.argv.includes('--quick');
const settings = {
  logins: quick ? 20 : 100,
  roundTrips: quick ? 300 : 3000,
  handOverStatements: quick ? 300 : 3000,
  heavyQuery: 'SELECT count(*) FROM generate_series(1, 2000000) AS g WHERE g % 7 = 3',
  heavyRuns: quick ? 1 : 3,
};

function percentile(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 1000) / 1000;
}

async function latencies(count: number, run: (i: number) => Promise<unknown>): Promise<{ p50Ms: number; p99Ms: number; perSecond: number }> {
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await run(i);
    times.push(performance.now() - t0);
  }
  const elapsed = performance.now() - started;
  times.sort((a, b) => a - b);
  return { p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), perSecond: Math.round((count / elapsed) * 1000) };
}

/** Runs `work` while sampling the event loop: the longest the loop could not run a timer. */
async function stall(work: () => Promise<unknown>): Promise<{ workMs: number; maxStallMs: number; p99DelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let last = performance.now();
  let maxStall = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxStall = Math.max(maxStall, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  for (let i = 0; i < settings.heavyRuns; i++) await work();
  const workMs = (performance.now() - started) / settings.heavyRuns;
  maxStall = Math.max(maxStall, performance.now() - last);
  clearInterval(timer);
  histogram.disable();
  return { workMs: Math.round(workMs), maxStallMs: Math.round(maxStall), p99DelayMs: Math.round(histogram.percentile(99) / 1e6) };
}

const test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
const scratch = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
try {
  const env = test.enterHost('recommendation');
  const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  const password = async (): Promise<string> => (await credential.getToken('https://ossrdbms-aad.database.windows.net/.default')).token;
  const connect = async (): Promise<pg.Client> => {
    const client = new pg.Client({ password });
    await client.connect();
    return client;
  };
  await (await connect()).end(); // starts the engine and warms the token cache

  // 1. Logins.
  const login = await latencies(settings.logins, async () => (await connect()).end());

  // 2. Round trips, front end against in-process PGlite.
  const one = await connect();
  for (let i = 0; i < 100; i++) await one.query('SELECT $1::int AS n', [i]);
  const frontEnd = await latencies(settings.roundTrips, (i) => one.query('SELECT $1::int AS n', [i]));
  const inProcess = await PGlite.create({ dataDir: join(scratch, 'pglite') });
  for (let i = 0; i < 100; i++) await inProcess.query('SELECT $1::int AS n', [i]);
  const floor = await latencies(settings.roundTrips, (i) => inProcess.query('SELECT $1::int AS n', [i]));

  // 3. Hand-over: two connections alternating against one.
  const other = await connect();
  const alternating = await latencies(settings.handOverStatements, (i) => (i % 2 ? other : one).query('SELECT $1::int AS n', [i]));
  const single = await latencies(settings.handOverStatements, (i) => one.query('SELECT $1::int AS n', [i]));

  // 4. A heavy query and the shared event loop.
  const inWorker = await stall(() => one.query(settings.heavyQuery));
  const onMainThread = await stall(() => inProcess.query(settings.heavyQuery));

  await Promise.all([one.end(), other.end(), inProcess.close()]);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'local-postgres',
      quick,
      login,
      roundTrip: { frontEnd, inProcessPglite: floor },
      handOver: { twoClientsAlternating: alternating, oneClient: single },
      heavyQuery: { engineInChildProcess: inWorker, pgliteOnMainThread: onMainThread },
    })}\n`,
  );
} finally {
  await test.stop();
  rmSync(scratch, { recursive: true, force: true });
}
