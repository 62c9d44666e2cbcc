import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ConfigError } from '../../config/local-azure-config.js';

/**
 * The journal's on-disk format. A file is the 8-byte {@link journalMagic}, then records; a record is one
 * commit: `u32 length of the body`, `u32 CRC-32 of the length's four bytes and the body`, the body (a sequence
 * of operations, each an opcode byte and its fields, little-endian). A record is applied whole or not at all:
 * the first record whose length runs past the end of the file or whose checksum does not match ends the
 * journal (a write torn by a crash), and the file is truncated there.
 */
export const journalMagic = Buffer.from('LAZSBJ01', 'latin1');
const recordHeaderBytes = 8;

/** Operations of a record. Keys (queue and entity store keys) are numbered by a `key` operation before first use in a file. */
export const JournalOp = {
  /** `u32 id, string key`: from here on, `id` stands for `key` in this file. */
  Key: 1,
  /** `u32 queue, f64 sequence, f64 enqueuedAt, u8 flags, [f64 expiresAt], [f64 scheduledAt], u32 deliveryCount, [string sessionId], [string deadLetterSource], [string assignedMessageId], bytes payload`. */
  PutMessage: 2,
  /** `u32 queue, f64 sequence`. */
  DeleteMessage: 3,
  /** `u32 queue`: every message of the queue goes. */
  PurgeQueue: 4,
  /** `u32 entity, f64 last`. */
  PutSequence: 5,
  /** `u32 queue, string sessionId, bytes state`. */
  PutSessionState: 6,
  /** `u32 queue, string sessionId`. */
  DeleteSessionState: 7,
  /** `u32 entity, string messageId, f64 expiresAt`. */
  PutDuplicate: 8,
  /** `u32 entity, u32 count, u32 queue × count`: the entity's sequence counter, duplicate history and its queues' session states go. */
  DropEntity: 9,
} as const;

/** Flags of a {@link JournalOp.PutMessage}: which optional fields follow. */
export const PutFlags = {
  Deferred: 1,
  Expires: 2,
  Scheduled: 4,
  Session: 8,
  DeadLetterSource: 16,
  AssignedMessageId: 32,
} as const;

/**
 * Encodes records into one growing buffer, reused from commit to commit. A commit that needed more than
 * {@link JournalWriter.keptBytes} gets a buffer of its own, dropped at the next {@link JournalWriter.reset}.
 */
export class JournalWriter {
  /** Size of the buffer kept between commits: a batch of 100 messages of ~640 B needs ~70 KiB. */
  static readonly keptBytes = 128 * 1024;
  buffer = Buffer.allocUnsafeSlow(JournalWriter.keptBytes);
  length = 0;
  private recordStart = -1;

  /** Starts a record (reserves its header). */
  begin(): void {
    this.ensure(recordHeaderBytes);
    this.recordStart = this.length;
    this.length += recordHeaderBytes;
  }

  /** Whether the open record has any operation. */
  get recordIsEmpty(): boolean {
    return this.length === this.recordStart + recordHeaderBytes;
  }

  /** Bytes of the open record so far. */
  get recordBytes(): number {
    return this.length - this.recordStart;
  }

  /** Ends the open record: fills in its length and checksum. */
  end(): void {
    const start = this.recordStart;
    const buffer = this.buffer;
    buffer.writeUInt32LE(this.length - start - recordHeaderBytes, start);
    const crc = crc32(buffer.subarray(start + recordHeaderBytes, this.length), crc32(buffer.subarray(start, start + 4)));
    buffer.writeUInt32LE(crc, start + 4);
    this.recordStart = -1;
  }

  /** Empties the buffer; one larger than {@link keptBytes} is let go. */
  reset(): void {
    this.length = 0;
    this.recordStart = -1;
    if (this.buffer.length > JournalWriter.keptBytes) this.buffer = Buffer.allocUnsafeSlow(JournalWriter.keptBytes);
  }

  u8(value: number): void {
    this.ensure(1);
    this.buffer[this.length++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }

  string(value: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(4 + value.length * 3);
    const written = this.buffer.write(value, this.length + 4, 'utf8');
    this.buffer.writeUInt32LE(written, this.length);
    this.length += 4 + written;
  }

  bytes(value: Uint8Array): void {
    this.ensure(4 + value.length);
    this.buffer.writeUInt32LE(value.length, this.length);
    this.buffer.set(value, this.length + 4);
    this.length += 4 + value.length;
  }

  private ensure(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

/** Reads the fields of one record's operations. */
export class JournalReader {
  constructor(
    readonly buffer: Buffer,
    public offset: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.offset >= this.end;
  }

  u8(): number {
    this.check(1);
    return this.buffer[this.offset++]!;
  }

  u32(): number {
    this.check(4);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.check(8);
    const value = this.buffer.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  string(): string {
    const length = this.u32();
    this.check(length);
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** Skips a length-prefixed byte string, returning where its bytes start. */
  skipBytes(): number {
    const length = this.u32();
    this.check(length);
    const at = this.offset;
    this.offset += length;
    return at;
  }

  /** A copy of a length-prefixed byte string (from Node's pool when small: no buffer of the file is kept). */
  bytes(): Buffer {
    const length = this.u32();
    this.check(length);
    const copy = Buffer.allocUnsafe(length);
    this.buffer.copy(copy, 0, this.offset, this.offset + length);
    this.offset += length;
    return copy;
  }

  private check(bytes: number): void {
    if (this.offset + bytes > this.end) throw new Error('a journal record ends inside an operation');
  }
}

/** The intact records of a journal file, as read at start-up. */
export interface JournalFile {
  /** The whole file (read once; let go after replay). */
  buffer: Buffer;
  /** Offsets of each intact record's body and its end, in order. */
  records: { start: number; end: number }[];
  /** Where the intact records end: the file is truncated here before anything is appended. */
  validLength: number;
  /** Bytes after the last intact record (a write torn by a crash), discarded. */
  discardedBytes: number;
}

/**
 * Reads a journal file and finds its intact records. A missing or empty file is an empty journal.
 *
 * @throws {ConfigError} when the file is not a journal of this format.
 */
export function readJournal(fd: number, path: string): JournalFile {
  const size = fstatSync(fd).size;
  const buffer = Buffer.allocUnsafeSlow(size);
  for (let read = 0; read < size; ) {
    const n = readSync(fd, buffer, read, size - read, read);
    if (n === 0) break;
    read += n;
  }
  const records: JournalFile['records'] = [];
  if (size < journalMagic.length) {
    // A file torn before its header was whole holds no record.
    return { buffer, records, validLength: 0, discardedBytes: size };
  }
  if (!buffer.subarray(0, journalMagic.length).equals(journalMagic)) {
    throw new ConfigError(
      `${path}: not a Service Bus journal of this version of the local Azure (it starts with something else). ` +
        'Its messages cannot be read: move the file away (or delete it) to start with empty entities.',
    );
  }
  let offset = journalMagic.length;
  while (offset + recordHeaderBytes <= size) {
    const length = buffer.readUInt32LE(offset);
    const end = offset + recordHeaderBytes + length;
    if (end > size) break;
    const expected = buffer.readUInt32LE(offset + 4);
    if (crc32(buffer.subarray(offset + recordHeaderBytes, end), crc32(buffer.subarray(offset, offset + 4))) !== expected) break;
    records.push({ start: offset + recordHeaderBytes, end });
    offset = end;
  }
  return { buffer, records, validLength: offset, discardedBytes: size - offset };
}

/** Writes all of `buffer[0, length)` at `position` (a short write is continued, as `write(2)` may return early). */
export function writeFully(fd: number, buffer: Buffer, length: number, position: number): void {
  for (let written = 0; written < length; ) {
    written += writeSync(fd, buffer, written, length - written, position + written);
  }
}

/**
 * Writes a new journal atomically: `fill` writes records through `write` into `<path>.compacting`, which is
 * fsynced and renamed over `path`. A crash before the rename leaves the old journal (the temporary file is
 * removed at the next start); after it, the new one. Returns the open descriptor of the new journal and its size.
 */
export function replaceJournal(path: string, fill: (write: (buffer: Buffer, length: number) => void) => void): { fd: number; size: number } {
  const temporary = `${path}.compacting`;
  const fd = openSync(temporary, 'w+', 0o600);
  try {
    let size = 0;
    const write = (buffer: Buffer, length: number) => {
      writeFully(fd, buffer, length, size);
      size += length;
    };
    write(journalMagic, journalMagic.length);
    fill(write);
    // The rename must not reach the disk before the data (a power loss would leave an empty journal).
    fsyncSync(fd);
    renameSync(temporary, path);
    return { fd, size };
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Removes what a compaction interrupted by a crash left behind. */
export function removeInterruptedCompaction(path: string): void {
  rmSync(`${path}.compacting`, { force: true });
}

/** Truncates a journal to `length` (a torn tail at start-up, or what a failed write may have left). */
export function truncateJournal(fd: number, length: number): void {
  ftruncateSync(fd, length);
}
