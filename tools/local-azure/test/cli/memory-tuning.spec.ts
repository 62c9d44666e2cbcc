import { readFileSync } from 'node:fs';
import { commandOf } from '../../src/cli/arguments.js';
import { bufferPoolBytes, semiSpaceMegabytes, tunedStart } from '../../src/runtime/memory-tuning.js';
import { LocalAzureProcess } from '../../src/testing/index.js';

const tunable = `glibc.malloc.mmap_threshold=${bufferPoolBytes}`;
const semiSpace = `--max-semi-space-size=${semiSpaceMegabytes}`;

describe('memory tuning at start-up', () => {
  it('adds the mmap threshold to glibc tunables (keeping the others) and the semi-space size to the Node options', () => {
    expect(tunedStart({ PATH: '/bin' }, ['--enable-source-maps'], true)).toEqual({
      env: { PATH: '/bin', GLIBC_TUNABLES: tunable },
      execArgv: ['--enable-source-maps', semiSpace],
    });
    expect(tunedStart({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, [], true)?.env).toEqual({ GLIBC_TUNABLES: `glibc.malloc.arena_max=2:${tunable}` });
    expect(tunedStart({ GLIBC_TUNABLES: tunable }, [semiSpace], true)).toBeUndefined();
  });

  it('leaves what the starter chose alone, and glibc tunables off anything but glibc', () => {
    expect(tunedStart({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' }, [semiSpace], true)).toBeUndefined();
    expect(tunedStart({ MALLOC_MMAP_THRESHOLD_: '65536', NODE_OPTIONS: '--max-semi-space-size=16' }, [], true)).toBeUndefined();
    expect(tunedStart({ MALLOC_MMAP_THRESHOLD_: '65536' }, ['--max_semi_space_size=8'], true)).toBeUndefined();
    expect(tunedStart({ PATH: '/bin' }, [], false)).toEqual({ env: { PATH: '/bin' }, execArgv: [semiSpace] });
  });

  it('knows the start command however it is given, and nothing else as start', () => {
    expect(commandOf([])).toBe('start');
    expect(commandOf(['--config', 'start.json'])).toBe('start');
    expect(commandOf(['start', '--verbose'])).toBe('start');
    expect(commandOf(['status', '--output', 'json'])).toBe('status');
    expect(commandOf(['start', '--help'])).toBe('help');
    expect(commandOf(['--no-such-option'])).toBeUndefined();
  });

  const glibc = process.platform === 'linux' && /\/libc\.so\.6$/m.test(readFileSync('/proc/self/maps', 'utf8'));
  (glibc ? describe : describe.skip)('the started process', () => {
    const azure = new LocalAzureProcess();
    beforeAll(() => azure.start(), 30_000);
    afterAll(() => azure.stop(), 30_000);

    it('runs tuned, re-executed in place: the pid its starter knows, the one status reports', async () => {
      const environment = readFileSync(`/proc/${azure.pid}/environ`, 'utf8').split('\0');
      expect(environment).toContain(`GLIBC_TUNABLES=${tunable}`);
      expect(readFileSync(`/proc/${azure.pid}/cmdline`, 'utf8').split('\0')).toContain(semiSpace);
      const { code, stdout } = await azure.run(['status', '--output', 'json']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ state: 'running', pid: azure.pid });
    }, 30_000);
  });
});
