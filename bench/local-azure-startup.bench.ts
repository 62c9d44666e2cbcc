// Start-up of the local Azure: time from process spawn until `status` says it runs (what a launcher waits
// for: its process lives and its admin API answers), first run (creates CA, keys, tenant) and warm
// restarts; plus the time the process reports itself, token requests per second at the identity endpoint,
// and idle memory.
// Run: npx nx build local-azure && npx node bench/local-azure-startup.bench.ts
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Not exported by @keyless/local-azure: the built modules, typed by their source (bench/tsconfig.json).
const { LocalAzureHome } = (await import(new URL('../tools/local-azure/dist/home.js', import.meta.url).href)) as typeof import('../tools/local-azure/src/home.ts');
const { waitUntilRunning } = (await import(new URL('../tools/local-azure/dist/runtime/status.js', import.meta.url).href)) as typeof import('../tools/local-azure/src/runtime/status.ts');

const cli = new URL('../tools/local-azure/dist/main.js', import.meta.url).pathname;
const restarts = 10;

async function start(home: string): Promise<{ child: ChildProcess; spawnToReadyMs: number; reportedMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, 'start', '--config', join(home, 'bench.config.json')], { env: { ...process.env, LOCAL_AZURE_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const status = await waitUntilRunning(new LocalAzureHome(home), 30_000, { pollIntervalInMs: 2 });
  if (status.state !== 'running') throw new Error(status.detail);
  const spawnToReadyMs = performance.now() - t0;
  while (!/ready in (\d+) ms/.test(output)) await new Promise((r) => setTimeout(r, 2));
  return { child, spawnToReadyMs, reportedMs: Number(/ready in (\d+) ms/.exec(output)![1]) };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

const home = mkdtempSync(join(tmpdir(), 'bench-local-azure-'));
// The token rate is measured, so a host's throttling (20 requests a second, 5 at once, as IMDS's) is lifted.
writeFileSync(join(home, 'bench.config.json'), JSON.stringify({ identityEndpoint: { throttling: { requestsPerWindow: 100_000, maxConcurrentRequests: 10_000 } } }));
try {
  const first = await start(home);
  await stop(first.child);
  const warm: number[] = [];
  const reported: number[] = [];
  for (let i = 0; i < restarts; i++) {
    const run = await start(home);
    warm.push(run.spawnToReadyMs);
    reported.push(run.reportedMs);
    if (i < restarts - 1) await stop(run.child);
    else {
      const env = Object.fromEntries(
        readFileSync(join(home, 'env', 'gateway.env'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      const url = `${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://cognitiveservices.azure.com&client_id=${env.AZURE_CLIENT_ID}`;
      const n = 2000;
      const t0 = performance.now();
      for (let j = 0; j < n; j += 20) {
        await Promise.all(Array.from({ length: 20 }, () => fetch(url, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } }).then((r) => r.arrayBuffer())));
      }
      const tokensPerSecond = n / ((performance.now() - t0) / 1000);
      await new Promise((r) => setTimeout(r, 500));
      console.log(`identity endpoint: ${tokensPerSecond.toFixed(0)} tokens/s (20 concurrent, RS256 signing, sign-in log write per request)`);
      console.log(`idle RSS after that: ${rssMb(run.child.pid!).toFixed(0)} MB`);
      await stop(run.child);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`first start (creates CA, signing key, tenant): ${first.spawnToReadyMs.toFixed(0)} ms spawn→ready (process reports ${first.reportedMs} ms)`);
  console.log(`warm restart, median of ${restarts}: ${median(warm).toFixed(0)} ms spawn→ready (max ${Math.max(...warm).toFixed(0)} ms; process reports ${median(reported)} ms)`);
} finally {
  rmSync(home, { recursive: true, force: true });
}
