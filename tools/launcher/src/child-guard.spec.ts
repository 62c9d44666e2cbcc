import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const guard = fileURLToPath(new URL('./child-guard.ts', import.meta.url));

/** Runs `script` as the launcher runs its processes: child-guard preloaded, stdin a pipe the launcher keeps open. */
function runGuarded(script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawn(process.execPath, ['--import', guard, '--input-type=module', '--eval', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })));
}

describe('child-guard', () => {
  it('leaves a process alone when one of its worker threads starts and ends, while the launcher is there', async () => {
    // Node runs --import in worker threads too; their own stdin is empty and ends at once. The local Azure's Vision
    // decoding threads so stopped the whole local Azure under `npm start`.
    const result = await runGuarded(`
      import { Worker } from 'node:worker_threads';
      const worker = new Worker('setTimeout(() => undefined, 50)', { eval: true });
      await new Promise((resolve) => worker.on('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      process.stdout.write('alive');
      process.exit(0);
    `);
    expect(result).toEqual({ code: 0, signal: null, output: 'alive' });
  }, 20_000);
});
