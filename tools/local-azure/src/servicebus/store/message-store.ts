import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ConfigError } from '../../config/local-azure-config.js';
import { openDatabase } from '../../util/database.js';

/** Version of the store's tables, kept in SQLite's user_version; a home written in another format is refused. */
const storeFormat = 2;

/**
 * Refuses a store written by another version of the local Azure, rather than failing on its first write:
 * its messages cannot be read in this format, and dropping them silently would lose what was sent.
 */
function checkStoreFormat(db: DatabaseSync, path: string): void {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  const hasTables = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").get();
  if (version === storeFormat || (version === 0 && !hasTables)) return;
  throw new ConfigError(
    `${path}: the Service Bus store was written by another version of the local Azure (format ${version || 1}; this version reads format ${storeFormat}). ` +
      'Its messages cannot be read: move the file away (or delete it, with its -wal and -shm files) to start with empty entities.',
  );
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
}

type PendingWrite = { kind: 'put'; queue: string; row: () => PersistedMessage } | { kind: 'delete'; queue: string; sequenceNumber: number };

const defaults = {
  /** How often expired duplicate-detection rows are pruned from disk. */
  duplicatePruneIntervalInMs: 60_000,
  /**
   * WAL pages after which a commit also checkpoints (copies the WAL into the database file and fsyncs both):
   * SQLite's default is 1000 (4 MB), a stall of 5–80 ms measured here every ~65 batches of 100 messages.
   */
  walAutoCheckpointPages: 4096,
  /** Quiet time after the last commit before the WAL is checkpointed, outside any send's path. */
  idleCheckpointDelayInMs: 250,
};

/** Rows per multi-row insert, largest first: a commit's message rows go in as few statements as these sizes allow. */
const insertChunkSizes = [64, 16, 4, 1];
const messageColumns = 12;

/**
 * The Service Bus message store: SQLite in WAL mode with `synchronous=NORMAL`, so a committed write
 * survives `kill -9` of the broker. Writes are grouped per event-loop turn into one transaction
 * ("group commit"); `afterCommit` callbacks run once the transaction holding everything written so far
 * is committed — the broker acknowledges sends and settlements from there. The WAL is checkpointed once
 * writes pause (see `defaults`): an acknowledgement waits for a checkpoint's copy and fsyncs only when a burst
 * has written 16 MB without a pause.
 */
export class MessageStore {
  private readonly db: DatabaseSync;
  private readonly statements: Record<
    | 'deleteMessage'
    | 'putSequence'
    | 'putSessionState'
    | 'deleteSessionState'
    | 'putDuplicate'
    | 'deleteMessagesOf'
    | 'putEntity'
    | 'deleteEntity'
    | 'deleteSequence'
    | 'deleteDuplicatesOf'
    | 'deleteSessionStatesOf',
    StatementSync
  >;
  /** `INSERT OR REPLACE` of n message rows at once, for each n of {@link insertChunkSizes}. */
  private readonly putMessages = new Map<number, StatementSync>();
  /** Re-armed by every commit that wrote messages: checkpoints the WAL once writes pause. */
  private idleCheckpoint?: NodeJS.Timeout;
  /** Small integer per queue key: a message's row id is `queueId * 2^40 + sequence number` (one B-tree, no index). */
  private readonly queueIds = new Map<string, number>();
  /** This turn's message writes, one per message, keyed by {@link pendingKey} (a number: no string built per message). */
  private pending = new Map<number, PendingWrite>();
  /** Small integer per queue key for {@link pendingKey}, in memory only (the stored ids are `queueIds`). */
  private readonly pendingQueueIds = new Map<string, number>();
  private sequences = new Map<string, number>();
  private sessionStates = new Map<string, { queue: string; sessionId: string; state: Uint8Array | null }>();
  private duplicates: { entity: string; messageId: string; expiresAt: number }[] = [];
  private purges: string[] = [];
  private entities = new Map<string, EntityRecord | null>();
  /** Entities whose sequence counter, duplicate-detection history and session states go (the entity was deleted). */
  private droppedEntities: { entity: string; queues: string[] }[] = [];
  private callbacks: ((error?: Error) => void)[] = [];
  private scheduled = false;
  private closed = false;
  /** Commits held back (the `servicebus-store stall` fault): writes and their acknowledgements wait. */
  private held = false;
  private lastDuplicatePrune = 0;

  constructor(path: string) {
    this.db = openDatabase(path);
    checkStoreFormat(this.db, path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS queues (key TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
      CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, enqueued_at INTEGER NOT NULL,
        expires_at INTEGER, scheduled_at INTEGER, deferred INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
        session_id TEXT, dead_letter_source TEXT, assigned_message_id TEXT);
      CREATE TABLE IF NOT EXISTS sequences (entity TEXT PRIMARY KEY, last INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS session_states (queue TEXT NOT NULL, session_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (queue, session_id));
      CREATE TABLE IF NOT EXISTS duplicates (entity TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (entity, message_id));
      CREATE TABLE IF NOT EXISTS entities (
        key TEXT PRIMARY KEY, kind TEXT NOT NULL, origin TEXT NOT NULL, definition TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, accessed_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT OR IGNORE INTO meta VALUES ('created_at', '${Date.now()}');
      PRAGMA user_version = ${storeFormat};
    `);
    this.statements = {
      deleteMessage: this.db.prepare('DELETE FROM messages WHERE id = ?'),
      deleteMessagesOf: this.db.prepare('DELETE FROM messages WHERE queue = ?'),
      putSequence: this.db.prepare('INSERT OR REPLACE INTO sequences VALUES (?, ?)'),
      putSessionState: this.db.prepare('INSERT OR REPLACE INTO session_states VALUES (?, ?, ?)'),
      deleteSessionState: this.db.prepare('DELETE FROM session_states WHERE queue = ? AND session_id = ?'),
      putDuplicate: this.db.prepare('INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?)'),
      putEntity: this.db.prepare('INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?, ?, ?, ?)'),
      deleteEntity: this.db.prepare('DELETE FROM entities WHERE key = ?'),
      deleteSequence: this.db.prepare('DELETE FROM sequences WHERE entity = ?'),
      deleteDuplicatesOf: this.db.prepare('DELETE FROM duplicates WHERE entity = ?'),
      deleteSessionStatesOf: this.db.prepare('DELETE FROM session_states WHERE queue = ?'),
    };
    for (const size of insertChunkSizes) {
      const row = `(${Array.from({ length: messageColumns }, () => '?').join(', ')})`;
      this.putMessages.set(size, this.db.prepare(`INSERT OR REPLACE INTO messages VALUES ${Array.from({ length: size }, () => row).join(', ')}`));
    }
    this.loadQueueIds();
    // Checkpoints run once the store is quiet, and inside a commit only when a burst has written 16 MB.
    this.db.exec(`PRAGMA wal_autocheckpoint = ${defaults.walAutoCheckpointPages}`);
  }

  /** Reads everything (once, at start-up); expired duplicate-detection entries are dropped. */
  load(now: number): StoreContents {
    this.db.prepare('DELETE FROM duplicates WHERE expires_at < ?').run(now);
    const rows = this.db.prepare('SELECT * FROM messages ORDER BY id').all() as unknown as MessageRow[];
    return {
      messages: rows.map((row) => ({
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
      })),
      sequences: new Map(
        (this.db.prepare('SELECT entity, last FROM sequences').all() as unknown as { entity: string; last: number }[]).map((r) => [r.entity, r.last]),
      ),
      sessionStates: (this.db.prepare('SELECT queue, session_id, state FROM session_states').all() as unknown as { queue: string; session_id: string; state: Uint8Array }[]).map(
        (r) => ({ queue: r.queue, sessionId: r.session_id, state: r.state }),
      ),
      duplicates: (this.db.prepare('SELECT entity, message_id, expires_at FROM duplicates').all() as unknown as { entity: string; message_id: string; expires_at: number }[]).map(
        (r) => ({ entity: r.entity, messageId: r.message_id, expiresAt: r.expires_at }),
      ),
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
    this.pending.set(this.pendingKey(queue, sequenceNumber), { kind: 'put', queue, row });
    this.schedule();
  }

  deleteMessage(queue: string, sequenceNumber: number): void {
    this.pending.set(this.pendingKey(queue, sequenceNumber), { kind: 'delete', queue, sequenceNumber });
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

  /** Commits pending writes now (used at stop, where held writes are committed too). */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.held) return;
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
    try {
      this.db.exec('BEGIN');
      try {
        const s = this.statements;
        for (const { entity, queues } of droppedEntities) {
          s.deleteSequence.run(entity);
          s.deleteDuplicatesOf.run(entity);
          for (const queue of queues) s.deleteSessionStatesOf.run(queue);
        }
        for (const queue of purges) s.deleteMessagesOf.run(queue);
        const rows: PersistedMessage[] = [];
        for (const write of pending.values()) {
          if (write.kind === 'delete') s.deleteMessage.run(this.rowId(write.queue, write.sequenceNumber));
          else rows.push(write.row());
        }
        this.insertMessages(rows);
        for (const [entity, last] of sequences) s.putSequence.run(entity, last);
        for (const { queue, sessionId, state } of sessionStates.values()) {
          if (state === null) s.deleteSessionState.run(queue, sessionId);
          else s.putSessionState.run(queue, sessionId, state);
        }
        for (const { entity, messageId, expiresAt } of duplicates) s.putDuplicate.run(entity, messageId, expiresAt);
        for (const [key, record] of entities) {
          if (record === null) s.deleteEntity.run(key);
          else s.putEntity.run(key, record.kind, record.origin, record.definition, record.createdAt, record.updatedAt, record.accessedAt);
        }
        const now = Date.now();
        if (now - this.lastDuplicatePrune > defaults.duplicatePruneIntervalInMs) {
          this.lastDuplicatePrune = now;
          this.db.prepare('DELETE FROM duplicates WHERE expires_at < ?').run(now);
        }
        this.db.exec('COMMIT');
      } catch (error) {
        this.db.exec('ROLLBACK');
        // A queue id handed out in this transaction went with its row: forget it, or the next queue would
        // reuse the number after a restart and its message rows would overwrite this queue's.
        this.loadQueueIds();
        throw error;
      }
    } catch (error) {
      failure = error as Error;
    }
    for (const callback of callbacks) callback(failure);
    if (!failure && (pending.size || purges.length)) {
      (this.idleCheckpoint ??= setTimeout(() => this.checkpoint(), defaults.idleCheckpointDelayInMs).unref()).refresh();
    }
  }

  /**
   * Copies the WAL into the database file (PASSIVE: nothing waits), so the next commit starts the WAL
   * afresh. Runs once commits pause: a burst of sends pays no checkpoint unless it writes 16 MB.
   */
  private checkpoint(): void {
    if (this.closed || this.held) return;
    try {
      this.db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    } catch {
      // A failed checkpoint leaves the WAL as it is: SQLite checkpoints again at its threshold or at close.
    }
  }

  /** Inserts message rows in chunks of {@link insertChunkSizes}: a batch of 100 is three statements, not 100. */
  private insertMessages(rows: PersistedMessage[]): void {
    let next = 0;
    for (const size of insertChunkSizes) {
      const statement = this.putMessages.get(size)!;
      for (; rows.length - next >= size; next += size) {
        const values: (string | number | Uint8Array | null)[] = new Array(size * messageColumns);
        for (let i = 0; i < size; i++) {
          const r = rows[next + i]!;
          const at = i * messageColumns;
          values[at] = this.rowId(r.queue, r.sequenceNumber);
          values[at + 1] = r.queue;
          values[at + 2] = r.sequenceNumber;
          values[at + 3] = r.payload;
          values[at + 4] = r.enqueuedAt;
          values[at + 5] = r.expiresAt;
          values[at + 6] = r.scheduledAt;
          values[at + 7] = r.deferred ? 1 : 0;
          values[at + 8] = r.deliveryCount;
          values[at + 9] = r.sessionId;
          values[at + 10] = r.deadLetterSource;
          values[at + 11] = r.assignedMessageId;
        }
        statement.run(...values);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.held = false;
    this.flush();
    this.closed = true;
    clearTimeout(this.idleCheckpoint);
    this.db.close();
  }

  private loadQueueIds(): void {
    this.queueIds.clear();
    for (const row of this.db.prepare('SELECT key, id FROM queues').all() as unknown as { key: string; id: number }[]) this.queueIds.set(row.key, row.id);
  }

  private rowId(queue: string, sequenceNumber: number): number {
    let id = this.queueIds.get(queue);
    if (id === undefined) {
      id = this.queueIds.size + 1;
      this.db.prepare('INSERT INTO queues VALUES (?, ?)').run(queue, id);
      this.queueIds.set(queue, id);
    }
    return id * 2 ** 40 + sequenceNumber;
  }

  private pendingKey(queue: string, sequenceNumber: number): number {
    let id = this.pendingQueueIds.get(queue);
    if (id === undefined) {
      id = this.pendingQueueIds.size + 1;
      this.pendingQueueIds.set(queue, id);
    }
    return id * 2 ** 40 + sequenceNumber;
  }

  private schedule(): void {
    if (this.scheduled || this.closed || this.held) return;
    this.scheduled = true;
    // After the I/O callbacks of this turn: everything that arrived together commits together.
    setImmediate(() => this.flush());
  }
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
