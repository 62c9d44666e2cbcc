// What one hop between two processes costs on this machine when the receiving process was asleep — the floor
// under every cross-process step of the chain at concurrency 1 (docs/benchmarks.md, "Issue 17 goals").
// A client sends 300 bytes over TCP on loopback to an echo server in another process and waits for them to come
// back: back to back (both processes busy), and after an idle gap like the chain's between two hops (both wait
// in epoll for a few milliseconds, as the gateway, the broker and the services do while the chat model answers).
// The same pair is also run pinned to one CPU (`taskset`, when the system has it), where no wake-up has to reach
// another, idle CPU. Prints a table and one JSON line.
//
//   npx node bench/wakeup-latency.bench.ts [--round-trips 2000] [--gap-ms 3]
import { execFileSync, spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { 'round-trips': { type: 'string', default: '2000' }, 'gap-ms': { type: 'string', default: '3' }, serve: { type: 'boolean' }, client: { type: 'string' } },
});
const roundTrips = Number(values['round-trips']);
const gapMs = Number(values['gap-ms']);
if (!Number.isInteger(roundTrips) || roundTrips < 100) throw new Error('--round-trips: a whole number of at least 100');
if (!Number.isFinite(gapMs) || gapMs < 0) throw new Error('--gap-ms: a number of milliseconds, 0 or more');

const payload = Buffer.alloc(300, 'x');
const script = fileURLToPath(import.meta.url);

/** The echo server: prints its port, answers every read with the same bytes. */
function serve(): void {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (data) => socket.write(data));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
  });
}

/** Round trips to the server on `port`, `gap` ms apart (0: back to back); p50 and p90 in µs. */
async function measure(port: number, gap: number): Promise<{ p50: number; p90: number }> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const samples: number[] = [];
  for (let i = 0; i < roundTrips + 100; i++) {
    if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
    const started = process.hrtime.bigint();
    const echoed = new Promise((resolve) => socket.once('data', resolve));
    socket.write(payload);
    await echoed;
    if (i >= 100) samples.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  socket.destroy();
  samples.sort((a, b) => a - b);
  const at = (q: number) => Math.round(samples[Math.floor(q * (samples.length - 1))]! * 10) / 10;
  return { p50: at(0.5), p90: at(0.9) };
}

/** Runs server and client as two fresh processes (optionally both pinned to CPU 0) and returns the client's figures. */
async function pair(gap: number, pinned: boolean): Promise<{ p50: number; p90: number }> {
  const run = (args: string[]) => (pinned ? spawn('taskset', ['-c', '0', process.execPath, ...args]) : spawn(process.execPath, args));
  const server = run([script, '--serve']);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
      server.once('error', reject);
      server.once('exit', (code) => reject(new Error(`the echo server exited (${code})`)));
    });
    const client = run([script, '--client', String(port), '--gap-ms', String(gap), '--round-trips', String(roundTrips)]);
    let output = '';
    client.stdout.on('data', (data: Buffer) => (output += data.toString()));
    const code = await new Promise<number | null>((resolve) => client.once('exit', resolve));
    if (code !== 0) throw new Error(`the client exited with ${code}`);
    return JSON.parse(output) as { p50: number; p90: number };
  } finally {
    server.kill();
  }
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

if (values.serve) {
  serve();
} else if (values.client) {
  process.stdout.write(JSON.stringify(await measure(Number(values.client), gapMs)));
} else {
  const results: Record<string, { p50: number; p90: number }> = {};
  results['back to back'] = await pair(0, false);
  results[`after ${gapMs} ms idle`] = await pair(gapMs, false);
  if (hasTaskset()) {
    results['back to back, one CPU'] = await pair(0, true);
    results[`after ${gapMs} ms idle, one CPU`] = await pair(gapMs, true);
  }
  console.log(`round trip between two processes, TCP on loopback, 300 B (${roundTrips} round trips each)`);
  for (const [name, { p50, p90 }] of Object.entries(results)) console.log(`  ${name.padEnd(32)} p50 ${String(p50).padStart(7)} µs   p90 ${String(p90).padStart(7)} µs`);
  console.log(JSON.stringify({ roundTrips, gapMs, roundTripInMicroseconds: results }));
}
