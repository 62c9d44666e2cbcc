import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess } from './processes.js';

describe(startProcess.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'launcher-processes-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('when nodeArgs are given', () => {
    it('passes them to Node before the script, and the script its own arguments', async () => {
      const script = join(dir, 'print-args.mjs');
      writeFileSync(script, 'console.log(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(2) }));\n');
      const child = startProcess({ name: 'print-args', script, args: ['--flag'], nodeArgs: ['--stack-size=2000'], env: {}, logDir: dir });
      expect(await child.exited).toBe(0);
      // `exited` resolves once the log holds everything the process printed.
      expect(JSON.parse(readFileSync(child.logFile, 'utf8').trim())).toEqual({ execArgv: ['--stack-size=2000'], argv: ['--flag'] });
    });
  });
});
