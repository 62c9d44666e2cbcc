import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../test/fixtures/log-burst-on-shutdown.mjs', import.meta.url));

describe('a service stopped by a signal', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('writes every line its shutdown logged (%s), then exits 0', async (signal) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', fixture, '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    child.kill(signal);
    expect(await exited).toEqual({ code: 0, signal: null });
    const lines = out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { message: string });
    const shutdown = lines.filter((line) => line.message.startsWith('shutdown line '));
    expect(shutdown.map((line) => line.message)).toEqual(Array.from({ length: 300 }, (_, i) => `shutdown line ${i + 1}`));
  });
});
