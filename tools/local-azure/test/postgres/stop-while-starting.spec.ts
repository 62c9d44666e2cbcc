import { jest } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { LocalAzureProcess } from '../../src/testing/index.js';
import { client, identityPassword } from './support.js';

// Three starts of the local Azure and its engine: over a minute on a loaded machine.
jest.setTimeout(240_000);

/** The child processes of `pid` (of each of its threads), from /proc. */
function childrenOf(pid: number): number[] {
  const tasks = `/proc/${pid}/task`;
  try {
    return readdirSync(tasks).flatMap((task) => readFileSync(`${tasks}/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    return []; // the process is gone
  }
}

/** Whether a process runs: it exists and is not a zombie (ended, not yet reaped). */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** The PostgreSQL engine process of the local Azure `pid`, once it has started one. */
async function engineOf(pid: number, timeoutInMs: number): Promise<number> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const engine = childrenOf(pid).find((child) => {
      try {
        return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('pglite-engine.child');
      } catch {
        return false;
      }
    });
    if (engine) return engine;
    if (Date.now() > deadline) throw new Error(`the local Azure (pid ${pid}) started no PostgreSQL engine within ${timeoutInMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The local Azure as `npm run local-azure` runs it, on a home whose PostgreSQL has data: its start waits for the engine
// (seconds, and 10 s and more on a loaded machine). A SIGTERM (or Ctrl-C) then gives that start up instead of waiting.
describe('A local Azure stopped while its PostgreSQL engine starts', () => {
  const azure = new LocalAzureProcess();
  const query = async (sql: string): Promise<unknown[]> => {
    const c = client(identityPassword());
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  };

  afterAll(() => azure.stop());

  it('exits within 3 s, leaves no engine process, and the next start serves the same data', async () => {
    await azure.start(60_000);
    azure.enterHost('vision');
    await query("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL); INSERT INTO kept VALUES (1, 'committed')");
    await azure.kill('SIGTERM');

    const starting = azure.start(60_000).then(
      () => 'ready',
      (error: Error) => error.message,
    );
    const engine = await engineOf(azure.pid!, 60_000);
    const signalled = performance.now();
    await azure.kill('SIGTERM');
    expect(performance.now() - signalled).toBeLessThan(3000);
    const output = await starting;
    // Stopped cleanly (exit code 0), before the engine was ready: its start was given up, not waited for.
    expect(output).toMatch(/exited \(0\) before it was ready/);
    expect(output).toContain('SIGTERM: stopping…');
    expect(output).toContain('Local Azure stopped.');
    expect(output).not.toMatch(/\(PGlite\) ready/);
    expect(runs(engine)).toBe(false);

    await azure.start(60_000);
    expect(await query('SELECT note FROM kept WHERE id = 1')).toEqual([{ note: 'committed' }]);
  });
});
