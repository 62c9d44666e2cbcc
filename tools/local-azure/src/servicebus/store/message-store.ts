import { closeSync, constants, openSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ConfigError } from '../../config/local-azure-config.js';
import { openDatabase } from '../../util/database.js';
import {
  JournalOp,
  JournalReader,
  JournalWriter,
  PutFlags,
  readJournal,
  removeInterruptedCompaction,
  replaceJournal,
  truncateJournal,
  writeFully,
  journalMagic,
} from './message-journal.js';

/**
 * Version of the store, kept in SQLite's user_version. Format 3: entity definitions and meta in SQLite, messages,
 * sequence counters, session states and duplicate-detection history in the journal beside it. The formats before it
 * held all of that in SQLite and are migrated into the journal at the first start: format 2 (user_version 2) and
 * format 1, the same tables written before the store recorded its version (user_version 0; the first of its
 * versions had no `id` and no `assigned_message_id` column). A format newer than this one is refused.
 */
const storeFormat = 3;

/** Columns of the `messages` table every format-1 and format-2 store has (`assigned_message_id` came later). */
const sqliteMessageColumns = ['queue', 'seq', 'payload', 'enqueued_at', 'expires_at', 'scheduled_at', 'deferred', 'delivery_count', 'session_id', 'dead_letter_source'];

/** How a store was found at start: new or in this format, or in an older one whose tables are to be migrated. */
type StoreFound = { format: 'current' } | { format: 'migrate'; from: number; hasAssignedMessageId: boolean };

/**
 * Refuses a store this version cannot read, rather than failing on its first write or dropping its messages:
 * one written by a newer version (whose format it does not know), or one whose tables match no format.
 */
function checkStoreFormat(db: DatabaseSync, path: string): StoreFound {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  const columns = new Set((db.prepare('PRAGMA table_info(messages)').all() as { name: string }[]).map((column) => column.name));
  if (version === storeFormat || (version === 0 && !columns.size)) return { format: 'current' };
  if (version > storeFormat) {
    throw new ConfigError(
      `${path}: the Service Bus store was written by a newer version of the local Azure (format ${version}; this version reads formats 1 to ${storeFormat}). ` +
        'Start the version that wrote it (git pull, then npm ci), or start this one on another LOCAL_AZURE_HOME; moving the file aside would start with empty entities.',
    );
  }
  if ((version === 0 || version === 2) && sqliteMessageColumns.every((column) => columns.has(column))) {
    return { format: 'migrate', from: version || 1, hasAssignedMessageId: columns.has('assigned_message_id') };
  }
  throw new ConfigError(
    `${path}: the Service Bus store is in no format this version of the local Azure knows (user_version ${version}, messages table ${columns.size ? `with columns ${[...columns].join(', ')}` : 'missing'}). ` +
      'Its messages cannot be read: move the file away (or delete it, with its -wal and -shm files) to start with empty entities.',
  );
}

/** The journal's file beside the store's SQLite file: `servicebus.db` → `servicebus.journal`. */
export function journalPathOf(databasePath: string): string {
  return `${databasePath.replace(/\.db$/, '')}.journal`;
}
/** One message row: the encoded message (without broker annotations) and its broker state. */
export interface PersistedMessage {
  /** Store key of the queue the message is in (`queue:orders`, `subscription:events/vision`, `…#dlq`). */
  queue: string;
  sequenceNumber: number;
  payload: Uint8Array;
  enqueuedAt: number;
  /** Epoch ms; `null` when the message never expires. */
  expiresAt: number | null;
  /** Epoch ms while the message is scheduled; `null` once active. */
  scheduledAt: number | null;
  deferred: boolean;
  deliveryCount: number;
  sessionId: string | null;
  deadLetterSource: string | null;
  /** The message id the broker assigned, when `payload` (the bytes as sent) has none. */
  assignedMessageId: string | null;
}

/**
 * An entity's definition row: every queue, topic and subscription has one, so entities created at run
 * time come back after a restart and every entity keeps its creation time.
 */
export interface EntityRecord {
  /** The entity's store key (`queue:orders`, `topic:events`, `subscription:events/vision`). */
  key: string;
  kind: 'queue' | 'topic' | 'subscription';
  /** `topology` (from the topology file, which wins at every start) or `runtime` (created through the management API). */
  origin: 'topology' | 'runtime';
  /** The definition, encoded by `entity-records.ts`. */
  definition: string;
  createdAt: number;
  updatedAt: number;
  accessedAt: number;
}

/** Everything the store holds, as read at start-up. */
export interface StoreContents {
  messages: PersistedMessage[];
  /** Last sequence number per entity store key. */
  sequences: Map<string, number>;
  sessionStates: { queue: string; sessionId: string; state: Uint8Array }[];
  duplicates: { entity: string; messageId: string; expiresAt: number }[];
  entities: EntityRecord[];
  /** When this store (the namespace) was first created, epoch ms. */
  createdAt: number;
  /** What the start-up found worth a log line: a torn journal tail discarded, a format-1 or format-2 store migrated. */
  notes: string[];
}

/** A message write of a turn; once committed, the same object is the message's entry in the live set. */
interface MessageWrite {
  kind: 'put';
  queue: string;
  /** The message's current state (read at the commit, and again when the journal is compacted). */
  row: () => PersistedMessage;
  /** Bytes of its last journal operation: the live set's size, which decides compaction. */
  bytes: number;
}

type PendingWrite = MessageWrite | { kind: 'delete'; queue: string; sequenceNumber: number };

type SessionStateWrite = { queue: string; sessionId: string; state: Uint8Array | null };
type DuplicateEntry = { entity: string; messageId: string; expiresAt: number };

const defaults = {
  /**
   * How often expired duplicate-detection entries are dropped from the live set (and so from the next compaction):
   * once writes pause, and at a commit when they never do (a broker under steady load would otherwise keep every
   * message id it ever saw).
   */
  duplicatePruneIntervalInMs: 60_000,
  /** Quiet time after the last commit before the store considers compacting the journal, outside any send's path. */
  idleCompactionDelayInMs: 250,
  /**
   * Once writes pause, the journal is compacted when it is at least this large and at least
   * {@link idleCompactionRatio} times the live data. Below 8 MiB a journal costs nothing worth a rewrite
   * (replayed in a few ms at start).
   */
  idleCompactionMinBytes: 8 * 1024 * 1024,
  idleCompactionRatio: 2,
  /**
   * A broker that never pauses for {@link idleCompactionDelayInMs} compacts inside a commit, once the journal
   * reaches 128 MiB and holds at least 4 × the live data: disk use and start-up replay stay bounded, and the
   * commit that pays for it writes at most a quarter of that (~32 MiB of live data, tens of ms).
   */
  commitCompactionMinBytes: 128 * 1024 * 1024,
  commitCompactionRatio: 4,
  /** After a failed compaction (a full disk, say), the next attempt waits this long. */
  compactionRetryDelayInMs: 60_000,
  /** A compaction writes its records in pieces of about this size, so the encode buffer stays small. */
  compactionRecordBytes: 1024 * 1024,
};

/** Bytes a live entry other than a message is counted for, in the live set's size. */
const smallEntryBytes = 32;
/** A message's key: `keyId * 2^40 + sequence number` (a number: no string built per message). */
const keyStride = 2 ** 40;

/**
 * The Service Bus message store. Entity definitions and the namespace's creation time are in SQLite (rare
 * writes); messages, sequence counters, session states and duplicate-detection history are in an append-only
 * journal beside it (`servicebus.journal`, format in `message-journal.ts`). Everything is read once at start
 * ({@link load}); afterwards writes are grouped per event-loop turn ("group commit") and a commit encodes them
 * all into ONE record written with ONE `write` — no fsync, like SQLite's WAL with `synchronous=NORMAL`: a
 * committed record is in the OS's page cache and survives `kill -9` of the broker (a power loss or kernel crash can
 * drop the last records, never tear one open: each is checksummed and a torn tail is cut at the next start).
 * `afterCommit` callbacks run once the record holding everything written so far is written — the broker
 * acknowledges sends and settlements from there.
 *
 * The store keeps the live set (a reference to each stored message's current state) to compact the journal:
 * once writes pause and the file is at least twice the live data (and 8 MiB), it is rewritten with live entries
 * only, into a temporary file renamed over it (see `defaults`).
 */
export class MessageStore {
  private readonly db: DatabaseSync;
  private readonly statements: Record<'putEntity' | 'deleteEntity', StatementSync>;
  private readonly journalPath: string;
  private fd: number;
  /** Bytes of the journal file that hold intact records; the next record is written here. */
  private size = 0;
  private loaded = false;
  private readonly writer = new JournalWriter();
  /** Small integer per store key, the same in memory and in the journal. */
  private readonly keyIds = new Map<string, number>();
  private readonly keyNames: string[] = [];
  /** Key ids the current journal file has defined. */
  private definedKeys = new Set<number>();
  /** This turn's message writes, one per message, keyed by {@link messageKey}. */
  private pending = new Map<number, PendingWrite>();
  private sequences = new Map<string, number>();
  private sessionStates = new Map<string, SessionStateWrite>();
  private duplicates: DuplicateEntry[] = [];
  private purges: string[] = [];
  private entities = new Map<string, EntityRecord | null>();
  /** Entities whose sequence counter, duplicate-detection history and session states go (the entity was deleted). */
  private droppedEntities: { entity: string; queues: string[] }[] = [];
  private callbacks: ((error?: Error) => void)[] = [];
  /** What is in the journal and still counts: compaction writes these. */
  private readonly live = {
    messages: new Map<number, MessageWrite>(),
    sequences: new Map<string, number>(),
    sessionStates: new Map<string, { queue: string; sessionId: string; state: Uint8Array }>(),
    duplicates: new Map<string, DuplicateEntry>(),
    messageBytes: 0,
  };
  private idleTimer?: NodeJS.Timeout;
  private nextCompactionAttempt = 0;
  private scheduled = false;
  private closed = false;
  /** Commits held back (the `servicebus-store stall` fault): writes and their acknowledgements wait. */
  private held = false;
  private lastDuplicatePrune = 0;
  private readonly notes: string[] = [];

  constructor(path: string) {
    this.db = openDatabase(path);
    const found = checkStoreFormat(this.db, path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS entities (
        key TEXT PRIMARY KEY, kind TEXT NOT NULL, origin TEXT NOT NULL, definition TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, accessed_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT OR IGNORE INTO meta VALUES ('created_at', '${Date.now()}');
    `);
    this.statements = {
      putEntity: this.db.prepare('INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?, ?, ?, ?)'),
      deleteEntity: this.db.prepare('DELETE FROM entities WHERE key = ?'),
    };
    this.journalPath = journalPathOf(path);
    removeInterruptedCompaction(this.journalPath);
    if (found.format === 'migrate') {
      this.fd = this.migrateTables(found.from, found.hasAssignedMessageId);
    } else {
      this.db.exec(`PRAGMA user_version = ${storeFormat}`);
      this.fd = openSync(this.journalPath, constants.O_RDWR | constants.O_CREAT, 0o600);
    }
  }

  /** Reads everything (at start-up: the journal is replayed); expired duplicate-detection entries are dropped. */
  load(now: number): StoreContents {
    const messages = this.replay(now);
    return {
      messages,
      sequences: new Map(this.live.sequences),
      sessionStates: [...this.live.sessionStates.values()].map(({ queue, sessionId, state }) => ({ queue, sessionId, state })),
      duplicates: [...this.live.duplicates.values()].map(({ entity, messageId, expiresAt }) => ({ entity, messageId, expiresAt })),
      entities: (this.db.prepare('SELECT * FROM entities ORDER BY key').all() as unknown as EntityRow[]).map((r) => ({
        key: r.key,
        kind: r.kind,
        origin: r.origin,
        definition: r.definition,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        accessedAt: r.accessed_at,
      })),
      createdAt: Number((this.db.prepare("SELECT value FROM meta WHERE key = 'created_at'").get() as { value: string }).value),
      notes: this.notes.splice(0),
    };
  }

  /** Writes an entity's definition row at the next commit. */
  putEntity(record: EntityRecord): void {
    this.entities.set(record.key, record);
    this.schedule();
  }

  /** Deletes an entity's definition row at the next commit (its messages stay: see {@link dropEntityState}). */
  deleteEntity(key: string): void {
    this.entities.set(key, null);
    this.schedule();
  }

  /**
   * Deletes everything an entity kept besides its definition — the messages of its `queues` (active and
   * dead-letter), its sequence counter, duplicate-detection history and session states — before the pending
   * writes of this turn (a deleted entity's messages go with it; one created again starts empty).
   */
  dropEntityState(entity: string, queues: string[]): void {
    for (const queue of queues) this.purgeQueue(queue);
    this.sequences.delete(entity);
    this.duplicates = this.duplicates.filter((duplicate) => duplicate.entity !== entity);
    for (const [key, state] of this.sessionStates) if (queues.includes(state.queue)) this.sessionStates.delete(key);
    this.droppedEntities.push({ entity, queues });
    this.schedule();
  }

  /** Writes a message's current state at the next commit (`row` is read then, so later changes coalesce). */
  putMessage(queue: string, sequenceNumber: number, row: () => PersistedMessage): void {
    this.pending.set(this.messageKey(queue, sequenceNumber), { kind: 'put', queue, row, bytes: 0 });
    this.schedule();
  }

  deleteMessage(queue: string, sequenceNumber: number): void {
    this.pending.set(this.messageKey(queue, sequenceNumber), { kind: 'delete', queue, sequenceNumber });
    this.schedule();
  }

  /** Deletes every message of a queue (operator purge), before the pending writes of this turn. */
  purgeQueue(queue: string): void {
    for (const [key, write] of this.pending) if (write.queue === queue && write.kind === 'put') this.pending.delete(key);
    this.purges.push(queue);
    this.schedule();
  }

  putSequence(entity: string, last: number): void {
    this.sequences.set(entity, last);
    this.schedule();
  }

  putSessionState(queue: string, sessionId: string, state: Uint8Array | null): void {
    this.sessionStates.set(`${queue}\u0000${sessionId}`, { queue, sessionId, state });
    this.schedule();
  }

  putDuplicate(entity: string, messageId: string, expiresAt: number): void {
    this.duplicates.push({ entity, messageId, expiresAt });
    this.schedule();
  }

  /** Runs `callback` once everything written so far is committed (or the commit failed). */
  afterCommit(callback: (error?: Error) => void): void {
    this.callbacks.push(callback);
    this.schedule();
  }

  /**
   * Holds every commit (and so every acknowledgement that waits for one) until released; releasing commits
   * everything held at once. A stalled disk, as the `servicebus-store stall` fault injects it.
   */
  hold(held: boolean): void {
    this.held = held;
    if (!held) this.schedule();
  }

  /**
   * Commits pending writes now (used at stop, where held writes are committed too): one journal record, one
   * write; then the entity rows, if any, in one SQLite transaction. A failed write leaves the journal as it was
   * (truncated back to its last record) and every callback of the commit gets the error.
   */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.held) return;
    if (!this.loaded) this.replay(Date.now());
    const pending = this.pending;
    const sequences = this.sequences;
    const sessionStates = this.sessionStates;
    const duplicates = this.duplicates;
    const purges = this.purges;
    const entities = this.entities;
    const droppedEntities = this.droppedEntities;
    const callbacks = this.callbacks;
    this.entities = new Map();
    this.droppedEntities = [];
    this.pending = new Map();
    this.sequences = new Map();
    this.sessionStates = new Map();
    this.duplicates = [];
    this.purges = [];
    this.callbacks = [];
    let failure: Error | undefined;
    let written = false;
    const writer = this.writer;
    const defined = this.definedKeys;
    const newKeys: number[] = [];
    try {
      writer.begin();
      for (const { entity, queues } of droppedEntities) {
        const entityId = this.reference(entity, defined, newKeys);
        const queueIds = queues.map((queue) => this.reference(queue, defined, newKeys));
        writer.u8(JournalOp.DropEntity);
        writer.u32(entityId);
        writer.u32(queueIds.length);
        for (const id of queueIds) writer.u32(id);
      }
      for (const queue of purges) {
        const id = this.reference(queue, defined, newKeys);
        writer.u8(JournalOp.PurgeQueue);
        writer.u32(id);
      }
      for (const [key, write] of pending) {
        const id = Math.floor(key / keyStride);
        if (!defined.has(id)) this.reference(write.queue, defined, newKeys);
        if (write.kind === 'delete') {
          writer.u8(JournalOp.DeleteMessage);
          writer.u32(id);
          writer.f64(write.sequenceNumber);
        } else {
          const before = writer.length;
          encodePut(writer, id, write.row());
          write.bytes = writer.length - before;
        }
      }
      for (const [entity, last] of sequences) encodeSequence(writer, this.reference(entity, defined, newKeys), last);
      for (const { queue, sessionId, state } of sessionStates.values()) encodeSessionState(writer, this.reference(queue, defined, newKeys), sessionId, state);
      for (const { entity, messageId, expiresAt } of duplicates) encodeDuplicate(writer, this.reference(entity, defined, newKeys), messageId, expiresAt);
      if (!writer.recordIsEmpty) {
        writer.end();
        writeFully(this.fd, writer.buffer, writer.length, this.size);
        this.size += writer.length;
        written = true;
      }
    } catch (error) {
      failure = error as Error;
      // Keys first defined in the record that was not written are not defined in the file.
      for (const id of newKeys) defined.delete(id);
      try {
        truncateJournal(this.fd, this.size);
      } catch {
        // The next record is written at `size` all the same; whatever is left after the last record fails its checksum.
      }
    } finally {
      writer.reset();
    }
    if (written) this.applyToLive(droppedEntities, purges, pending, sequences, sessionStates, duplicates);
    if (!failure && entities.size) {
      try {
        this.commitEntities(entities);
      } catch (error) {
        failure = error as Error;
      }
    }
    for (const callback of callbacks) callback(failure);
    if (written) {
      (this.idleTimer ??= setTimeout(() => this.idle(), defaults.idleCompactionDelayInMs).unref()).refresh();
      if (duplicates.length) this.pruneDuplicates(Date.now());
      if (this.size >= defaults.commitCompactionMinBytes && this.size >= defaults.commitCompactionRatio * this.liveBytes()) this.compact();
    }
  }

  close(): void {
    if (this.closed) return;
    this.held = false;
    this.flush();
    this.closed = true;
    clearTimeout(this.idleTimer);
    closeSync(this.fd);
    this.db.close();
  }

  /** Bytes of the journal file (its header and intact records). */
  get journalBytes(): number {
    return this.size;
  }

  /** Duplicate-detection entries held in the live set (in memory, and written again by each compaction). */
  get duplicateEntries(): number {
    return this.live.duplicates.size;
  }

  /**
   * Rewrites the journal with live entries only (a temporary file renamed over it: a crash at any point leaves
   * the old journal or the new one). Returns whether it did; a failure (a full disk) leaves the old journal and
   * is retried after {@link defaults.compactionRetryDelayInMs}.
   */
  compact(): boolean {
    if (this.closed || !this.loaded || Date.now() < this.nextCompactionAttempt) return false;
    const defined = new Set<number>();
    const live = this.live;
    try {
      const now = Date.now();
      const replaced = this.writeSnapshot(defined, {
        messages: (function* () {
          for (const entry of live.messages.values()) yield entry.row();
        })(),
        sequences: live.sequences,
        sessionStates: live.sessionStates.values(),
        duplicates: [...live.duplicates.values()].filter(({ expiresAt }) => expiresAt >= now),
      });
      closeSync(this.fd);
      this.fd = replaced.fd;
      this.size = replaced.size;
      this.definedKeys = defined;
      return true;
    } catch {
      this.nextCompactionAttempt = Date.now() + defaults.compactionRetryDelayInMs;
      return false;
    }
  }

  /** Once writes pause: expired duplicate-detection entries leave the live set, and the journal is compacted if it is worth it. */
  private idle(): void {
    if (this.closed || this.held) return;
    this.pruneDuplicates(Date.now());
    if (this.size >= defaults.idleCompactionMinBytes && this.size >= defaults.idleCompactionRatio * this.liveBytes()) this.compact();
  }

  /** Drops expired duplicate-detection entries from the live set, at most once a {@link defaults.duplicatePruneIntervalInMs}. */
  private pruneDuplicates(now: number): void {
    if (now - this.lastDuplicatePrune <= defaults.duplicatePruneIntervalInMs) return;
    this.lastDuplicatePrune = now;
    for (const [key, { expiresAt }] of this.live.duplicates) if (expiresAt < now) this.live.duplicates.delete(key);
  }

  private liveBytes(): number {
    const live = this.live;
    return journalMagic.length + live.messageBytes + smallEntryBytes * (live.sequences.size + live.sessionStates.size + live.duplicates.size);
  }

  /** Applies a written record to the live set, in the order its operations were written. */
  private applyToLive(
    droppedEntities: { entity: string; queues: string[] }[],
    purges: string[],
    pending: Map<number, PendingWrite>,
    sequences: Map<string, number>,
    sessionStates: Map<string, SessionStateWrite>,
    duplicates: DuplicateEntry[],
  ): void {
    const live = this.live;
    for (const { entity, queues } of droppedEntities) {
      live.sequences.delete(entity);
      for (const [key, duplicate] of live.duplicates) if (duplicate.entity === entity) live.duplicates.delete(key);
      for (const [key, state] of live.sessionStates) if (queues.includes(state.queue)) live.sessionStates.delete(key);
    }
    for (const queue of purges) {
      const id = this.keyIds.get(queue)!;
      for (const [key, entry] of live.messages) {
        if (Math.floor(key / keyStride) !== id) continue;
        live.messageBytes -= entry.bytes;
        live.messages.delete(key);
      }
    }
    for (const [key, write] of pending) {
      const previous = live.messages.get(key);
      if (previous) live.messageBytes -= previous.bytes;
      if (write.kind === 'put') {
        live.messages.set(key, write);
        live.messageBytes += write.bytes;
      } else if (previous) {
        live.messages.delete(key);
      }
    }
    for (const [entity, last] of sequences) live.sequences.set(entity, last);
    for (const [key, { queue, sessionId, state }] of sessionStates) {
      if (state === null) live.sessionStates.delete(key);
      else live.sessionStates.set(key, { queue, sessionId, state });
    }
    for (const duplicate of duplicates) live.duplicates.set(`${duplicate.entity}\u0000${duplicate.messageId}`, duplicate);
  }

  private commitEntities(entities: Map<string, EntityRecord | null>): void {
    const s = this.statements;
    this.db.exec('BEGIN');
    try {
      for (const [key, record] of entities) {
        if (record === null) s.deleteEntity.run(key);
        else s.putEntity.run(key, record.kind, record.origin, record.definition, record.createdAt, record.updatedAt, record.accessedAt);
      }
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Replays the journal into the live set (its torn tail, if any, cut off) and returns the stored messages,
   * ordered by queue and sequence number.
   */
  private replay(now: number): PersistedMessage[] {
    const file = readJournal(this.fd, this.journalPath);
    if (file.discardedBytes) {
      this.notes.push(`${this.journalPath}: ${file.discardedBytes} bytes after the last intact record (a write torn by a crash) were discarded`);
    }
    if (file.validLength === 0) {
      truncateJournal(this.fd, 0);
      writeFully(this.fd, journalMagic, journalMagic.length, 0);
      this.size = journalMagic.length;
    } else {
      if (file.discardedBytes) truncateJournal(this.fd, file.validLength);
      this.size = file.validLength;
    }
    const { buffer } = file;
    /** Where each message's latest put starts (decoded once replay is done: overwritten states are never copied). */
    const puts = new Map<number, number>();
    const sequences = new Map<string, number>();
    const sessionStates = new Map<string, { queue: string; sessionId: string; state: Uint8Array }>();
    const duplicates = new Map<string, DuplicateEntry>();
    const fileKeys = new Map<number, string>();
    const keyOf = (id: number) => {
      const key = fileKeys.get(id);
      if (key === undefined) throw new Error(`key ${id} is used before it is defined`);
      return key;
    };
    for (const { start, end } of file.records) {
      const reader = new JournalReader(buffer, start, end);
      try {
        while (!reader.done) {
          const op = reader.u8();
          switch (op) {
            case JournalOp.Key: {
              const id = reader.u32();
              fileKeys.set(id, reader.string());
              break;
            }
            case JournalOp.PutMessage: {
              const at = reader.offset;
              const id = reader.u32();
              keyOf(id);
              const sequenceNumber = reader.f64();
              skipPut(reader);
              puts.set(id * keyStride + sequenceNumber, at);
              break;
            }
            case JournalOp.DeleteMessage: {
              const id = reader.u32();
              puts.delete(id * keyStride + reader.f64());
              break;
            }
            case JournalOp.PurgeQueue: {
              const id = reader.u32();
              for (const key of puts.keys()) if (Math.floor(key / keyStride) === id) puts.delete(key);
              break;
            }
            case JournalOp.PutSequence: {
              const entity = keyOf(reader.u32());
              sequences.set(entity, reader.f64());
              break;
            }
            case JournalOp.PutSessionState: {
              const queue = keyOf(reader.u32());
              const sessionId = reader.string();
              sessionStates.set(`${queue}\u0000${sessionId}`, { queue, sessionId, state: reader.bytes() });
              break;
            }
            case JournalOp.DeleteSessionState: {
              const queue = keyOf(reader.u32());
              sessionStates.delete(`${queue}\u0000${reader.string()}`);
              break;
            }
            case JournalOp.PutDuplicate: {
              const entity = keyOf(reader.u32());
              const messageId = reader.string();
              duplicates.set(`${entity}\u0000${messageId}`, { entity, messageId, expiresAt: reader.f64() });
              break;
            }
            case JournalOp.DropEntity: {
              const entity = keyOf(reader.u32());
              const count = reader.u32();
              const queues: string[] = [];
              for (let i = 0; i < count; i++) queues.push(keyOf(reader.u32()));
              sequences.delete(entity);
              for (const [key, duplicate] of duplicates) if (duplicate.entity === entity) duplicates.delete(key);
              for (const [key, state] of sessionStates) if (queues.includes(state.queue)) sessionStates.delete(key);
              break;
            }
            default:
              throw new Error(`unknown operation ${op}`);
          }
        }
      } catch (error) {
        // The record's checksum matched: it was written whole, by a version that wrote something this one cannot read.
        throw new ConfigError(
          `${this.journalPath}: a record at byte ${start - 8} cannot be read (${(error as Error).message}); it was written by another version of the local Azure. ` +
            'Move the file away (or delete it) to start with empty entities.',
        );
      }
    }
    // Key ids are the same in memory and in the file; a second load finds the ids this store gave out.
    for (const [id, key] of fileKeys) {
      this.keyIds.set(key, id);
      this.keyNames[id] = key;
    }
    this.definedKeys = new Set(fileKeys.keys());
    const live = this.live;
    live.messages.clear();
    live.messageBytes = 0;
    const messages: PersistedMessage[] = [];
    for (const key of [...puts.keys()].sort((a, b) => a - b)) {
      const at = puts.get(key)!;
      const reader = new JournalReader(buffer, at, buffer.length);
      const message = decodePut(reader, fileKeys);
      messages.push(message);
      live.messages.set(key, { kind: 'put', queue: message.queue, row: () => message, bytes: reader.offset - at + 1 });
      live.messageBytes += reader.offset - at + 1;
    }
    live.sequences = sequences;
    live.sessionStates = sessionStates;
    live.duplicates = duplicates;
    for (const [key, { expiresAt }] of duplicates) if (expiresAt < now) duplicates.delete(key);
    this.lastDuplicatePrune = now;
    this.loaded = true;
    return messages;
  }

  /**
   * Moves a format-1 or format-2 store's messages, sequence counters, session states and duplicate-detection history
   * out of SQLite into a new journal, then drops those tables and marks the store format 3 (one transaction). A crash
   * before that transaction commits leaves the old format, migrated again at the next start (the journal is rewritten
   * whole). Returns the new journal's open descriptor.
   */
  private migrateTables(from: number, hasAssignedMessageId: boolean): number {
    // The first format-1 stores kept the id the broker assigned inside the payload (no column of its own); `rowid` is
    // `id` where that column exists, the insertion order where it does not.
    const assigned = hasAssignedMessageId ? 'assigned_message_id' : 'NULL AS assigned_message_id';
    const rows = this.db.prepare(`SELECT ${sqliteMessageColumns.join(', ')}, ${assigned} FROM messages ORDER BY rowid`).iterate() as IterableIterator<MessageRow>;
    const defined = new Set<number>();
    let count = 0;
    const replaced = this.writeSnapshot(defined, {
      messages: (function* () {
        for (const row of rows) {
          count++;
          yield {
            queue: row.queue,
            sequenceNumber: row.seq,
            payload: row.payload,
            enqueuedAt: row.enqueued_at,
            expiresAt: row.expires_at,
            scheduledAt: row.scheduled_at,
            deferred: row.deferred === 1,
            deliveryCount: row.delivery_count,
            sessionId: row.session_id,
            deadLetterSource: row.dead_letter_source,
            assignedMessageId: row.assigned_message_id,
          };
        }
      })(),
      sequences: (this.db.prepare('SELECT entity, last FROM sequences').all() as unknown as { entity: string; last: number }[]).map(({ entity, last }) => [entity, last]),
      sessionStates: (this.db.prepare('SELECT queue, session_id, state FROM session_states').all() as unknown as { queue: string; session_id: string; state: Uint8Array }[]).map(
        ({ queue, session_id, state }) => ({ queue, sessionId: session_id, state }),
      ),
      duplicates: (this.db.prepare('SELECT entity, message_id, expires_at FROM duplicates').all() as unknown as { entity: string; message_id: string; expires_at: number }[]).map(
        ({ entity, message_id, expires_at }) => ({ entity, messageId: message_id, expiresAt: expires_at }),
      ),
    });
    this.db.exec(`
      BEGIN;
      DROP TABLE messages; DROP TABLE IF EXISTS queues; DROP TABLE IF EXISTS sequences; DROP TABLE IF EXISTS session_states; DROP TABLE IF EXISTS duplicates;
      PRAGMA user_version = ${storeFormat};
      COMMIT;
    `);
    this.notes.push(`${this.journalPath}: ${count} messages moved out of the format-${from} store into the journal`);
    return replaced.fd;
  }

  /**
   * Writes a new journal holding `snapshot` (in records of about {@link defaults.compactionRecordBytes}, so the
   * encode buffer stays small) and renames it over the journal; `defined` collects the key ids it defines.
   */
  private writeSnapshot(
    defined: Set<number>,
    snapshot: {
      messages: Iterable<PersistedMessage>;
      sequences: Iterable<[string, number]>;
      sessionStates: Iterable<{ queue: string; sessionId: string; state: Uint8Array }>;
      duplicates: Iterable<DuplicateEntry>;
    },
  ): { fd: number; size: number } {
    const writer = this.writer;
    return replaceJournal(this.journalPath, (write) => {
      const endPieceIfFull = (force = false) => {
        if (writer.recordIsEmpty || (!force && writer.recordBytes < defaults.compactionRecordBytes)) return;
        writer.end();
        write(writer.buffer, writer.length);
        writer.reset();
        writer.begin();
      };
      writer.reset();
      writer.begin();
      try {
        for (const row of snapshot.messages) {
          encodePut(writer, this.reference(row.queue, defined), row);
          endPieceIfFull();
        }
        for (const [entity, last] of snapshot.sequences) encodeSequence(writer, this.reference(entity, defined), last);
        for (const { queue, sessionId, state } of snapshot.sessionStates) {
          encodeSessionState(writer, this.reference(queue, defined), sessionId, state);
          endPieceIfFull();
        }
        for (const { entity, messageId, expiresAt } of snapshot.duplicates) {
          encodeDuplicate(writer, this.reference(entity, defined), messageId, expiresAt);
          endPieceIfFull();
        }
        endPieceIfFull(true);
      } finally {
        writer.reset();
      }
    });
  }

  /** The key's id, with its definition written first if this file has not defined it yet. */
  private reference(key: string, defined: Set<number>, added?: number[]): number {
    const id = this.keyId(key);
    if (!defined.has(id)) {
      this.writer.u8(JournalOp.Key);
      this.writer.u32(id);
      this.writer.string(key);
      defined.add(id);
      added?.push(id);
    }
    return id;
  }

  private keyId(key: string): number {
    let id = this.keyIds.get(key);
    if (id === undefined) {
      id = this.keyNames.length || 1;
      this.keyIds.set(key, id);
      this.keyNames[id] = key;
    }
    return id;
  }

  private messageKey(queue: string, sequenceNumber: number): number {
    return this.keyId(queue) * keyStride + sequenceNumber;
  }

  private schedule(): void {
    if (this.scheduled || this.closed || this.held) return;
    this.scheduled = true;
    // Once the current callback (a socket read's frames, a timer) has run: everything one read brought commits
    // together, and its acknowledgements go out in the same turn.
    queueMicrotask(() => this.flush());
  }
}

/** Writes a {@link JournalOp.PutMessage} (the key `id` already defined). */
function encodePut(writer: JournalWriter, id: number, row: PersistedMessage): void {
  const flags =
    (row.deferred ? PutFlags.Deferred : 0) |
    (row.expiresAt !== null ? PutFlags.Expires : 0) |
    (row.scheduledAt !== null ? PutFlags.Scheduled : 0) |
    (row.sessionId !== null ? PutFlags.Session : 0) |
    (row.deadLetterSource !== null ? PutFlags.DeadLetterSource : 0) |
    (row.assignedMessageId !== null ? PutFlags.AssignedMessageId : 0);
  writer.u8(JournalOp.PutMessage);
  writer.u32(id);
  writer.f64(row.sequenceNumber);
  writer.f64(row.enqueuedAt);
  writer.u8(flags);
  if (row.expiresAt !== null) writer.f64(row.expiresAt);
  if (row.scheduledAt !== null) writer.f64(row.scheduledAt);
  writer.u32(row.deliveryCount);
  if (row.sessionId !== null) writer.string(row.sessionId);
  if (row.deadLetterSource !== null) writer.string(row.deadLetterSource);
  if (row.assignedMessageId !== null) writer.string(row.assignedMessageId);
  writer.bytes(row.payload);
}

/** Writes a {@link JournalOp.PutSequence}. */
function encodeSequence(writer: JournalWriter, id: number, last: number): void {
  writer.u8(JournalOp.PutSequence);
  writer.u32(id);
  writer.f64(last);
}

/** Writes a {@link JournalOp.PutSessionState}, or a {@link JournalOp.DeleteSessionState} for a `null` state. */
function encodeSessionState(writer: JournalWriter, id: number, sessionId: string, state: Uint8Array | null): void {
  writer.u8(state === null ? JournalOp.DeleteSessionState : JournalOp.PutSessionState);
  writer.u32(id);
  writer.string(sessionId);
  if (state !== null) writer.bytes(state);
}

/** Writes a {@link JournalOp.PutDuplicate}. */
function encodeDuplicate(writer: JournalWriter, id: number, messageId: string, expiresAt: number): void {
  writer.u8(JournalOp.PutDuplicate);
  writer.u32(id);
  writer.string(messageId);
  writer.f64(expiresAt);
}

/** Skips the fields of a {@link JournalOp.PutMessage} after its key and sequence number. */
function skipPut(reader: JournalReader): void {
  reader.f64();
  const flags = reader.u8();
  if (flags & PutFlags.Expires) reader.f64();
  if (flags & PutFlags.Scheduled) reader.f64();
  reader.u32();
  if (flags & PutFlags.Session) reader.skipBytes();
  if (flags & PutFlags.DeadLetterSource) reader.skipBytes();
  if (flags & PutFlags.AssignedMessageId) reader.skipBytes();
  reader.skipBytes();
}

/** Reads a {@link JournalOp.PutMessage} from its key on. */
function decodePut(reader: JournalReader, keys: Map<number, string>): PersistedMessage {
  const queue = keys.get(reader.u32())!;
  const sequenceNumber = reader.f64();
  const enqueuedAt = reader.f64();
  const flags = reader.u8();
  const expiresAt = flags & PutFlags.Expires ? reader.f64() : null;
  const scheduledAt = flags & PutFlags.Scheduled ? reader.f64() : null;
  const deliveryCount = reader.u32();
  const sessionId = flags & PutFlags.Session ? reader.string() : null;
  const deadLetterSource = flags & PutFlags.DeadLetterSource ? reader.string() : null;
  const assignedMessageId = flags & PutFlags.AssignedMessageId ? reader.string() : null;
  return {
    queue,
    sequenceNumber,
    payload: reader.bytes(),
    enqueuedAt,
    expiresAt,
    scheduledAt,
    deferred: (flags & PutFlags.Deferred) !== 0,
    deliveryCount,
    sessionId,
    deadLetterSource,
    assignedMessageId,
  };
}


interface EntityRow {
  key: string;
  kind: EntityRecord['kind'];
  origin: EntityRecord['origin'];
  definition: string;
  created_at: number;
  updated_at: number;
  accessed_at: number;
}

interface MessageRow {
  queue: string;
  seq: number;
  payload: Uint8Array;
  enqueued_at: number;
  expires_at: number | null;
  scheduled_at: number | null;
  deferred: number;
  delivery_count: number;
  session_id: string | null;
  dead_letter_source: string | null;
  assigned_message_id: string | null;
}
