import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../test/fixtures/log-burst-on-shutdown.mjs', import.meta.url));

/** Starts the fixture with `args`, waits until it is ready, sends `signal`; resolves with how it ended and its log lines. */
async function stopFixture(signal: NodeJS.Signals, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; tookInMs: number; lines: { level: number; message: string }[] }> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('"message":"ready"')) resolve();
    });
    child.on('close', () => reject(new Error(`the app ended before it was ready: ${err}`)));
  });
  const signalled = performance.now();
  child.kill(signal);
  // A stop that never ends is ended here, and shows as killed by SIGKILL.
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const end = await exited;
  clearTimeout(killer);
  const tookInMs = performance.now() - signalled;
  return { ...end, tookInMs, lines: out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level: number; message: string }) };
}

describe('a service stopped by a signal', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('writes every line its shutdown logged (%s), then exits 0', async (signal) => {
    const { code, signal: killedBy, lines } = await stopFixture(signal, ['300']);
    expect({ code, signal: killedBy }).toEqual({ code: 0, signal: null });
    const shutdown = lines.filter((line) => line.message.startsWith('shutdown line '));
    expect(shutdown.map((line) => line.message)).toEqual(Array.from({ length: 300 }, (_, i) => `shutdown line ${i + 1}`));
  });

  describe('when its close does not finish within the bound', () => {
    it('exits 1 at the bound, with the lines logged so far and one error line saying the close was cut short', async () => {
      const { code, tookInMs, lines } = await stopFixture('SIGTERM', ['5', 'hang']);
      expect(code).toBe(1);
      // The fixture's bound: 500 ms for the close, 1500 ms in all (services: 7 s and 8 s).
      expect(tookInMs).toBeGreaterThanOrEqual(500);
      expect(tookInMs).toBeLessThan(1_500 + 1_000);
      expect(lines.filter((line) => line.message.startsWith('shutdown line ')).map((line) => line.message)).toEqual(['shutdown line 1', 'shutdown line 2', 'shutdown line 3', 'shutdown line 4', 'shutdown line 5']);
      expect(lines.at(-1)).toMatchObject({ level: 50, message: expect.stringMatching(/^SIGTERM: the app did not close within 500 ms; exiting without it \(exit code 1\)\. /) });
    });
  });
});
