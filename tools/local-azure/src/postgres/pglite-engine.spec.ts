import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgliteEngine } from './pglite-engine.js';

jest.setTimeout(120_000);

describe(PgliteEngine.name, () => {
  describe('when the engine process dies as stop() begins', () => {
    let dataDir: string;
    beforeAll(() => {
      dataDir = mkdtempSync(join(tmpdir(), 'pglite-engine-'));
    });
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it('stops all the same: the exit ends the wait for its answer to "close", and for a statement in flight', async () => {
      const crashes: string[] = [];
      const engine = await PgliteEngine.start({ dataDir: join(dataDir, 'data'), database: 'keyless', extensions: [], onCrash: (message) => crashes.push(message) });
      // The engine dies (killed, or the WebAssembly program gone) just as the local Azure begins to stop it (both in
      // this turn, before the process's exit is observed): it never answers "close".
      const sql = Buffer.from('SELECT 1\0', 'utf8');
      const query = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 0]), sql]);
      query.writeInt32BE(4 + sql.length, 1);
      const inFlight = engine.exec(query).then(() => 'settled', () => 'settled');
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

  describe('when a terminal\'s Ctrl-C reaches the engine process too', () => {
    let dataDir: string;
    beforeAll(() => {
      dataDir = mkdtempSync(join(tmpdir(), 'pglite-engine-'));
    });
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    it('keeps serving until the local Azure closes it in order', async () => {
      const crashes: string[] = [];
      const engine = await PgliteEngine.start({ dataDir: join(dataDir, 'data'), database: 'keyless', extensions: [], onCrash: (message) => crashes.push(message) });
      process.kill(engine.processId!, 'SIGINT');
      // A simple query ('Q' SELECT 1) still answers after the signal: the engine is alive and the session usable.
      const sql = Buffer.from('SELECT 1\0', 'utf8');
      const query = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 0]), sql]);
      query.writeInt32BE(4 + sql.length, 1);
      const answer = await engine.exec(query);
      expect(answer.includes(Buffer.from('C\0\0\0\rSELECT 1\0'))).toBe(true);
      await engine.stop();
      expect(engine.running).toBe(false);
      expect(crashes).toEqual([]);
    });
  });
});
