import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localAzureStatus } from './local-azure-status.js';
import { freePort, waitFor } from './processes.js';
import { npmAsTyped } from '@keyless/testing';
import { commandForHome } from '@keyless/contracts';
import { defaultHome, serviceHomeEnv, startSystem } from './system.js';

describe(startSystem.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'launcher-system-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('when its signal is aborted while the local Azure starts (Ctrl-C during npm start)', () => {
    it('stops the local Azure it started and rejects with the abort reason, not a readiness failure', async () => {
      const home = join(dir, 'home');
      const stop = new AbortController();
      // A system that starts after all is stopped here, so the test leaves nothing running either way.
      const outcome = startSystem({ home, gatewayPort: await freePort(), signal: stop.signal }).then(
        (system) => system.stop().then(() => 'started anyway'),
        (error: unknown) => error,
      );
      // The local Azure writes its runtime record as its process starts, long before it is ready.
      await waitFor(() => existsSync(join(home, 'runtime.json')), 30_000, () => 'the local Azure did not begin to start within 30 s');
      const reason = new Error('stopped by SIGINT while starting');
      stop.abort(reason);

      expect(await outcome).toBe(reason);
      expect((await localAzureStatus(home)).state).toBe('stopped');
    });
  });
});

describe(serviceHomeEnv.name, () => {
  describe('when the home is the default one', () => {
    it('tells the services nothing: their local commands need no prefix', () => {
      expect(serviceHomeEnv(defaultHome)).toEqual({});
    });
  });

  describe('when the home is another one (LOCAL_AZURE_HOME=/some/dir npm start)', () => {
    it("hands the services that home, so the local fix commands they print run on it as typed", () => {
      const home = "/tmp/keyless copy/it's";
      const { LOCAL_AZURE_HOME } = serviceHomeEnv(home);
      expect(LOCAL_AZURE_HOME).toBe(home);
      const printed = commandForHome('npm run local-azure -- identity list', { root: LOCAL_AZURE_HOME!, isDefault: false });
      expect(npmAsTyped(printed, ['LOCAL_AZURE_HOME'])).toEqual({ args: ['run', 'local-azure', '--', 'identity', 'list'], env: { LOCAL_AZURE_HOME: home } });
    });
  });
});
