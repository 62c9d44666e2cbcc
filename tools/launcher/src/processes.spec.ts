import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess } from './processes.js';

describe(startProcess.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'launcher-processes-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the log folder for its owner only, one an older launcher made 0755 included (the home's folders are 0700)", async () => {
    const script = join(dir, 'quiet.mjs');
    writeFileSync(script, '');
    const logDir = join(dir, 'home', 'logs');
    mkdirSync(logDir, { recursive: true, mode: 0o755 });
    const child = startProcess({ name: 'quiet', script, env: {}, logDir });
    expect(await child.exited).toBe(0);
    expect((statSync(logDir).mode & 0o777).toString(8)).toBe('700');
  });

  describe('when the process prints more than maxLogBytes', () => {
    it('keeps its newest lines in <name>.log and the ones before in <name>.log.1: its logs stay within twice the cap', async () => {
      const script = join(dir, 'chatty.mjs');
      writeFileSync(script, "for (let i = 0; i < 20000; i++) console.log(JSON.stringify({ line: i, message: 'request completed' }));\n");
      const maxLogBytes = 64 * 1024;
      const child = startProcess({ name: 'chatty', script, env: {}, logDir: dir, maxLogBytes });
      expect(await child.exited).toBe(0);
      const last = readFileSync(child.logFile, 'utf8').trim().split('\n').at(-1)!;
      expect(JSON.parse(last)).toEqual({ line: 19999, message: 'request completed' });
      // A pipe hands over at most 64 KiB at a time: a file may exceed the cap by the chunk that crossed it.
      expect(statSync(child.logFile).size).toBeLessThanOrEqual(2 * maxLogBytes);
      expect(statSync(`${child.logFile}.1`).size).toBeLessThanOrEqual(2 * maxLogBytes);
      expect(readFileSync(`${child.logFile}.1`, 'utf8').endsWith('\n')).toBe(true);
    });
  });

  describe('when nodeArgs are given', () => {
    it('passes them to Node before the script, and the script its own arguments', async () => {
      const script = join(dir, 'print-args.mjs');
      writeFileSync(script, 'console.log(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2) }));\n');
      const child = startProcess({ name: 'print-args', script, args: ['--flag'], nodeArgs: ['--stack-size=2000'], env: {}, logDir: dir });
      expect(await child.exited).toBe(0);
      // `exited` resolves once the log holds everything the process printed.
      // The launcher's own preload comes first (child-guard.ts: the process stops itself once the launcher is gone).
      expect(JSON.parse(readFileSync(child.logFile, 'utf8').trim())).toEqual({ execArgv: ['--import', expect.stringMatching(/\/child-guard\.ts$/), '--stack-size=2000'], argv: ['--flag'] });
    });
  });
});
