import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgliteEngine } from './pglite-engine.js';
import { backendMessages, frontend } from './wire-protocol.js';

jest.setTimeout(120_000);

describe(PgliteEngine.name, () => {
  const dataDirs: string[] = [];
  afterAll(() => dataDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** An engine on a fresh data folder, and the crashes it reports. */
  async function startEngine(): Promise<{ engine: PgliteEngine; crashes: string[] }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'pglite-engine-'));
    dataDirs.push(dataDir);
    const crashes: string[] = [];
    const engine = await PgliteEngine.start({ dataDir: join(dataDir, 'data'), database: 'keyless', extensions: [], onCrash: (message) => crashes.push(message) });
    return { engine, crashes };
  }

  describe('when it has answered many rows', () => {
    it('keeps none of them: its memory does not grow with the rows it served', async () => {
      const { engine } = await startEngine();
      try {
        const query = frontend.query("SELECT i, repeat('x', 40) AS text FROM generate_series(1, 2000) AS i");
        const heapInMb = async () => (await engine.heapUsedInBytes()) / 1024 / 1024;
        for (let i = 0; i < 50; i++) await engine.exec(query);
        const before = await heapInMb();
        // 400,000 rows, ~50 MB on the wire.
        for (let i = 0; i < 200; i++) await engine.exec(query);
        // PGlite's execProtocolRaw kept every row it returned: +97 MB of heap here (+174 MB of RSS); without that, the
        // heap stays within ±1 MB. The heap, not the RSS: on a slow machine V8 holds hundreds of MB for a while as it
        // compiles PGlite's hot WebAssembly functions, which is no row kept.
        expect((await heapInMb()) - before).toBeLessThan(20);
      } finally {
        await engine.stop();
      }
    });
  });

  describe('when the engine process dies as stop() begins', () => {
    it('stops all the same: the exit ends the wait for its answer to "close", and for a statement in flight', async () => {
      const { engine, crashes } = await startEngine();
      // The engine dies (killed, or the WebAssembly program gone) just as the local Azure begins to stop it (both in
      // this turn, before the process's exit is observed): it never answers "close".
      const inFlight = engine.exec(frontend.query('SELECT 1')).then(() => 'settled', () => 'settled');
      process.kill(engine.processId!, 'SIGKILL');
      const stopped = engine.stop().then(() => 'stopped');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still stopping after 30 s'), 30_000)));
      try {
        expect(await Promise.race([stopped, deadline])).toBe('stopped');
        // A statement the dead engine never answered is settled too, not left waiting for ever.
        expect(await Promise.race([inFlight, deadline])).toBe('settled');
      } finally {
        clearTimeout(timer);
      }
      expect(engine.running).toBe(false);
      // A stop asked for is not a crash.
      expect(crashes).toEqual([]);
    });
  });

  describe("when a terminal's Ctrl-C reaches the engine process too", () => {
    it('keeps serving until the local Azure closes it in order', async () => {
      const { engine, crashes } = await startEngine();
      process.kill(engine.processId!, 'SIGINT');
      // A simple query still answers after the signal: the engine is alive and the session usable.
      const answer = await engine.exec(frontend.query('SELECT 1'));
      const completed = [...backendMessages(answer)].filter((m) => m.type === 'C').map((m) => m.body.toString('utf8'));
      expect(completed).toEqual(['SELECT 1\0']);
      await engine.stop();
      expect(engine.running).toBe(false);
      expect(crashes).toEqual([]);
    });
  });
});
