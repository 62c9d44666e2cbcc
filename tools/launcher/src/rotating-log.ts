import { createWriteStream, openSync, renameSync, statSync } from 'node:fs';
import { Writable } from 'node:stream';
import { UsageError } from './replicas.js';

/** Defaults of {@link RotatingLog}. */
export const rotatingLogDefaults = {
  /**
   * Size at which a log file is set aside (`<name>.log` → `<name>.log.1`) and a new one begun. An instance's logs
   * then hold at most about twice this: the gateway's access lines (~370 bytes a request) fill 32 MiB in about
   * 90,000 requests, hours of a developer's use, while a system left running for days stays within its disk.
   */
  maxBytes: 32 * 1024 * 1024,
};

const newline = 0x0a;
const mebibyte = 1024 * 1024;
/** The largest `KEYLESS_LOG_MAX_MB`: 4 GiB a file. */
const maxLogMebibytes = 4096;

/** `KEYLESS_LOG_MAX_MB`, the size of each log file in MiB, as bytes; unset or blank is the default. */
export function parseMaxLogBytes(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return rotatingLogDefaults.maxBytes;
  const mebibytes = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(mebibytes) || mebibytes < 1 || mebibytes > maxLogMebibytes) {
    throw new UsageError(`KEYLESS_LOG_MAX_MB must be a whole number of MiB from 1 to ${maxLogMebibytes} (the size at which a service's log file is set aside as <instance>.log.1), not "${value}".`);
  }
  return mebibytes * mebibyte;
}

/**
 * A log file capped in size: once it holds `maxBytes`, it is renamed to `<path>.1` (replacing the one set aside
 * before) and the next line begins a new file, so the newest lines are always in `<path>` and the ones before
 * them in `<path>.1`; older lines are gone.
 *
 * Rules:
 * 1. Lines are never split between the two files: a chunk that ends a partly written line finishes it in the old
 *    file first. A file may exceed `maxBytes` by the chunk that crossed it (a pipe hands over at most 64 KiB).
 * 2. A file found already full (a restarted launcher appends) is set aside before the first line written to it.
 * 3. A file that cannot be set aside (its folder removed) is reported to `onError` and written on; the next attempt
 *    comes after another `maxBytes`. One that cannot be opened at all is reported, and its lines are dropped.
 */
export class RotatingLog {
  private stream: Writable;
  /** Streams of files set aside that may still be writing their last lines; {@link end} waits for them. */
  private readonly retiring = new Set<Promise<void>>();
  private bytes: number;
  private atLineStart = true;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly onError: (error: Error) => void,
  ) {
    this.bytes = sizeOf(path);
    try {
      this.stream = this.open();
    } catch (error) {
      onError(error as Error);
      this.stream = new Writable({ write: (_chunk, _encoding, done) => done() });
    }
  }

  /** Whether {@link end} was called. */
  get ended(): boolean {
    return this.stream.writableEnded;
  }

  write(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    let rest = chunk;
    if (this.bytes > 0 && this.bytes + rest.length > this.maxBytes) {
      if (!this.atLineStart) {
        const end = rest.indexOf(newline);
        if (end === -1) return this.append(rest);
        this.append(rest.subarray(0, end + 1));
        rest = rest.subarray(end + 1);
      }
      this.rotate();
    }
    if (rest.length) this.append(rest);
  }

  /** Ends the file; `done` is called once every line written so far is on disk, in this file and the one set aside. */
  end(done: () => void): void {
    const current = new Promise<void>((resolve) => this.stream.end(() => resolve()));
    void Promise.all([current, ...this.retiring]).then(() => done());
  }

  private append(bytes: Buffer): void {
    this.stream.write(bytes);
    this.bytes += bytes.length;
    this.atLineStart = bytes[bytes.length - 1] === newline;
  }

  private rotate(): void {
    try {
      // The old stream writes to its descriptor, so lines it still queues land in the file set aside.
      renameSync(this.path, `${this.path}.1`);
      const next = this.open();
      const retired = new Promise<void>((resolve) => this.stream.end(() => resolve()));
      this.retiring.add(retired);
      void retired.then(() => this.retiring.delete(retired));
      this.stream = next;
    } catch (error) {
      this.onError(error as Error);
    }
    this.bytes = 0;
    this.atLineStart = true;
  }

  /** Opened here (not by the stream, which opens asynchronously), so a rename can never race the open. */
  private open(): Writable {
    const stream = createWriteStream(this.path, { fd: openSync(this.path, 'a'), flags: 'a' });
    stream.on('error', (error) => this.onError(error));
    return stream;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
