import { readFileSync } from 'node:fs';
import { commandOf } from '../../src/cli/arguments.js';
import { semiSpaceMegabytes, tunedExecArgv } from '../../src/runtime/memory-tuning.js';
import { LocalAzureProcess } from '../../src/testing/index.js';

const semiSpace = `--max-semi-space-size=${semiSpaceMegabytes}`;

describe('memory tuning at start-up', () => {
  it('adds the semi-space size to the Node options it runs with', () => {
    expect(tunedExecArgv({ PATH: '/bin' }, ['--enable-source-maps'])).toEqual(['--enable-source-maps', semiSpace]);
    expect(tunedExecArgv({}, [semiSpace])).toBeUndefined();
  });

  it('leaves a semi-space size the starter chose alone', () => {
    expect(tunedExecArgv({ NODE_OPTIONS: '--max-semi-space-size=16' }, [])).toBeUndefined();
    expect(tunedExecArgv({}, ['--max_semi_space_size=8'])).toBeUndefined();
  });

  it('knows the start command however it is given, and nothing else as start', () => {
    expect(commandOf([])).toBe('start');
    expect(commandOf(['--config', 'start.json'])).toBe('start');
    expect(commandOf(['start', '--verbose'])).toBe('start');
    expect(commandOf(['status', '--output', 'json'])).toBe('status');
    expect(commandOf(['start', '--help'])).toBe('help');
    expect(commandOf(['--no-such-option'])).toBeUndefined();
  });

  // Linux's /proc shows what the process runs with; `process.execve` exists on POSIX systems.
  const reExecutes = process.platform === 'linux' && typeof process.execve === 'function';
  (reExecutes ? describe : describe.skip)('the started process', () => {
    const azure = new LocalAzureProcess();
    beforeAll(() => azure.start(), 30_000);
    afterAll(() => azure.stop(), 30_000);

    it('runs tuned, re-executed in place: the pid its starter knows, the one status reports', async () => {
      expect(readFileSync(`/proc/${azure.pid}/cmdline`, 'utf8').split('\0')).toContain(semiSpace);
      const { code, stdout } = await azure.run(['status', '--output', 'json']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ state: 'running', pid: azure.pid });
    }, 30_000);
  });
});
