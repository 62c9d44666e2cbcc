import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './replicas.js';
import { parseMaxLogBytes, RotatingLog, rotatingLogDefaults } from './rotating-log.js';

describe(RotatingLog.name, () => {
  let dir: string;
  let path: string;
  const errors: Error[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'launcher-rotating-log-'));
    path = join(dir, 'gateway.log');
    errors.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const line = (i: number) => `${JSON.stringify({ line: i, message: 'request completed'.padEnd(40, '.') })}\n`;
  const ended = (log: RotatingLog) => new Promise<void>((resolve) => log.end(resolve));
  const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

  describe('when more than maxBytes is written', () => {
    it('keeps the newest lines in the file and the ones before in <file>.1, each file within the cap plus one chunk', async () => {
      const log = new RotatingLog(path, 1024, (error) => errors.push(error));
      for (let i = 0; i < 500; i++) log.write(Buffer.from(line(i)));
      await ended(log);
      const current = lines(path).map((l) => (JSON.parse(l) as { line: number }).line);
      const previous = lines(`${path}.1`).map((l) => (JSON.parse(l) as { line: number }).line);
      expect(current.at(-1)).toBe(499);
      // Consecutive: the set-aside file ends where the current one begins, nothing lost between them.
      expect([...previous, ...current]).toEqual(Array.from({ length: previous.length + current.length }, (_, i) => previous[0]! + i));
      expect(statSync(path).size).toBeLessThanOrEqual(1024 + line(499).length);
      expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(1024 + line(499).length);
      expect(errors).toEqual([]);
    });
  });

  describe('when it is ended right after setting a file aside', () => {
    it('calls back only once the lines still queued for the set-aside file are on disk too', async () => {
      // 32 MiB queued in the old file's stream, then the line that crosses the cap, the new file's only one: the new
      // file is finished long before the old one.
      const cap = 32 * 1024 * 1024;
      const big = Buffer.alloc(64 * 1024, 'x');
      big[big.length - 1] = 0x0a;
      const log = new RotatingLog(path, cap, (error) => errors.push(error));
      for (let written = 0; written < cap; written += big.length) log.write(big);
      log.write(Buffer.from(line(1)));
      await ended(log);
      expect(statSync(`${path}.1`).size).toBe(cap);
      expect(lines(path)).toEqual([line(1).trim()]);
    });
  });

  describe('when a chunk ends a line begun by the chunk before', () => {
    it('finishes that line in the old file: no line is split between the two files', async () => {
      const log = new RotatingLog(path, 64, (error) => errors.push(error));
      log.write(Buffer.from(`${'a'.repeat(60)}\n${'b'.repeat(10)}`));
      log.write(Buffer.from(`${'b'.repeat(10)}\n${'c'.repeat(10)}\n`));
      await ended(log);
      expect(lines(`${path}.1`)).toEqual(['a'.repeat(60), 'b'.repeat(20)]);
      expect(lines(path)).toEqual(['c'.repeat(10)]);
    });
  });

  describe('when the file is already full at start (a restarted launcher)', () => {
    it('sets it aside before the first line', async () => {
      writeFileSync(path, 'x'.repeat(2048) + '\n');
      const log = new RotatingLog(path, 1024, (error) => errors.push(error));
      log.write(Buffer.from(line(1)));
      await ended(log);
      expect(lines(path)).toEqual([line(1).trim()]);
      expect(statSync(`${path}.1`).size).toBe(2049);
    });
  });

  describe('when its folder is removed', () => {
    it('reports it and keeps accepting lines', async () => {
      const log = new RotatingLog(path, 64, (error) => errors.push(error));
      log.write(Buffer.from(line(1)));
      rmSync(dir, { recursive: true, force: true });
      for (let i = 2; i < 6; i++) log.write(Buffer.from(line(i)));
      await ended(log);
      expect(errors[0]?.message).toMatch(/ENOENT/);
    });
  });
});

describe(parseMaxLogBytes.name, () => {
  it.each([
    [undefined, rotatingLogDefaults.maxBytes],
    ['', rotatingLogDefaults.maxBytes],
    ['1', 1024 * 1024],
    [' 64 ', 64 * 1024 * 1024],
  ])('reads KEYLESS_LOG_MAX_MB=%j as %d bytes', (value, bytes) => {
    expect(parseMaxLogBytes(value)).toBe(bytes);
  });

  it.each(['0', '-1', '1.5', '4097', '32MB', 'lots'])('refuses KEYLESS_LOG_MAX_MB=%j with a UsageError naming the range', (value) => {
    expect(() => parseMaxLogBytes(value)).toThrow(UsageError);
    expect(() => parseMaxLogBytes(value)).toThrow(`KEYLESS_LOG_MAX_MB must be a whole number of MiB from 1 to 4096`);
  });
});
