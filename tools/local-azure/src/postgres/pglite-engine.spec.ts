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

    it('stops all the same (Ctrl-C in a terminal reaches the engine process too, which then never answers "close")', async () => {
      const crashes: string[] = [];
      const engine = await PgliteEngine.start({ dataDir: join(dataDir, 'data'), database: 'keyless', extensions: [], onCrash: (message) => crashes.push(message) });
      // The terminal's SIGINT goes to the whole foreground process group: the engine dies while the local Azure's
      // own SIGINT handler has just begun to stop it (both in this turn, before the process's exit is observed).
      process.kill(engine.processId!, 'SIGINT');
      const stopped = engine.stop().then(() => 'stopped');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still stopping after 30 s'), 30_000)));
      try {
        expect(await Promise.race([stopped, deadline])).toBe('stopped');
      } finally {
        clearTimeout(timer);
      }
      expect(engine.running).toBe(false);
      // A stop asked for is not a crash.
      expect(crashes).toEqual([]);
    });
  });
});
