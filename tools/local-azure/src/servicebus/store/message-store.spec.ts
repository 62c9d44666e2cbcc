import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../config/local-azure-config.js';
import { firstStoreTables } from '../../../test/servicebus/first-store-tables.js';
import { withFullDisk } from '../../../test/servicebus/full-disk.js';
import { journalPathOf, MessageStore, type EntityRecord, type PersistedMessage, type StoreContents } from './message-store.js';

const message = (queue: string, sequenceNumber: number, fields: Partial<PersistedMessage> = {}): PersistedMessage => ({
  queue,
  sequenceNumber,
  payload: Buffer.from(`${queue}#${sequenceNumber}`),
  enqueuedAt: 1,
  expiresAt: null,
  scheduledAt: null,
  deferred: false,
  deliveryCount: 0,
  sessionId: null,
  deadLetterSource: null,
  assignedMessageId: null,
  ...fields,
});

/** Resolves with the commit's error, if any. */
const commit = (store: MessageStore) => new Promise<Error | undefined>((resolve) => store.afterCommit(resolve));

/** What a store holds, comparable with `toEqual` (payloads as plain bytes, lists in a stable order). */
function comparable(contents: StoreContents): unknown {
  return {
    messages: contents.messages.map((m) => ({ ...m, payload: Buffer.from(m.payload).toString('hex') })),
    sequences: [...contents.sequences].sort(),
    sessionStates: contents.sessionStates.map((s) => ({ ...s, state: Buffer.from(s.state).toString('hex') })).sort((a, b) => a.sessionId.localeCompare(b.sessionId)),
    duplicates: [...contents.duplicates].sort((a, b) => a.messageId.localeCompare(b.messageId)),
    entities: contents.entities,
  };
}

describe(MessageStore.name, () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'message-store-'));
    path = join(dir, 'servicebus.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens a new store, and reopens one it wrote', () => {
    new MessageStore(path).close();
    expect(() => new MessageStore(path).close()).not.toThrow();
  });

  it('refuses a store whose tables match no format, naming the file and what to do, instead of losing its messages later', () => {
    const old = new DatabaseSync(path);
    old.exec('CREATE TABLE messages (id TEXT PRIMARY KEY, queue TEXT, seq INTEGER, payload BLOB, enqueued_at INTEGER, expires_at INTEGER, scheduled_at INTEGER, deferred INTEGER, delivery_count INTEGER, session_id TEXT)');
    old.close();
    expect(() => new MessageStore(path)).toThrow(ConfigError);
    expect(() => new MessageStore(path)).toThrow(`${path}: the Service Bus store is in no format this version of the local Azure knows (user_version 0, messages table with columns id, queue, seq,`);
  });

  it('refuses a store a newer version wrote, saying to start that version, and leaves it as it was', () => {
    const newer = new DatabaseSync(path);
    newer.exec('CREATE TABLE entities (key TEXT PRIMARY KEY); PRAGMA user_version = 4;');
    newer.close();
    expect(() => new MessageStore(path)).toThrow(
      `${path}: the Service Bus store was written by a newer version of the local Azure (format 4; this version reads formats 1 to 3). Start the version that wrote it (git pull, then npm ci)`,
    );
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 4 });
    db.close();
    expect(existsSync(journalPathOf(path))).toBe(false);
  });

  it('refuses a journal file that is not one, instead of overwriting it', () => {
    writeFileSync(journalPathOf(path), 'something else entirely');
    expect(() => new MessageStore(path).load(Date.now())).toThrow(`${journalPathOf(path)}: not a Service Bus journal`);
  });

  it('reads back every kind of record as the last commit left it', async () => {
    const now = Date.now();
    const store = new MessageStore(path);
    store.load(now);
    const entity: EntityRecord = { key: 'queue:orders', kind: 'queue', origin: 'runtime', definition: '{"name":"orders"}', createdAt: 1, updatedAt: 2, accessedAt: 3 };
    store.putEntity(entity);
    store.putMessage('queue:orders', 1, () => message('queue:orders', 1));
    store.putMessage('queue:orders', 2, () => message('queue:orders', 2, { deliveryCount: 1 }));
    store.putMessage('queue:orders', 3, () => message('queue:orders', 3));
    store.putMessage('queue:purged', 1, () => message('queue:purged', 1));
    store.putSequence('queue:orders', 3);
    store.putSessionState('queue:orders', 'kept', Buffer.from('state one'));
    store.putSessionState('queue:orders', 'cleared', Buffer.from('state two'));
    store.putDuplicate('queue:orders', 'live-id', now + 60_000);
    store.putDuplicate('queue:orders', 'expired-id', now - 1);
    store.putSequence('topic:gone', 9);
    store.putSessionState('subscription:gone/sub', 'lost', Buffer.from('x'));
    store.putDuplicate('topic:gone', 'gone-id', now + 60_000);
    store.putMessage('subscription:gone/sub', 1, () => message('subscription:gone/sub', 1));
    expect(await commit(store)).toBeUndefined();

    // Every optional field of a message, an update of one, a delete, a purge, a session state cleared, an entity dropped.
    const full = message('queue:orders', 2, {
      payload: Buffer.from([0, 1, 2, 255]),
      enqueuedAt: 1_700_000_000_123,
      expiresAt: 1_800_000_000_000,
      scheduledAt: 1_750_000_000_000,
      deferred: true,
      deliveryCount: 7,
      sessionId: 'séssion ✓',
      deadLetterSource: 'subscription:events/vision',
      assignedMessageId: 'assigned-1',
    });
    store.putMessage('queue:orders', 2, () => full);
    store.deleteMessage('queue:orders', 3);
    store.purgeQueue('queue:purged');
    store.putSessionState('queue:orders', 'cleared', null);
    store.dropEntityState('topic:gone', ['subscription:gone/sub']);
    store.putMessage('queue:orders#dlq', 4, () => message('queue:orders#dlq', 4, { deadLetterSource: 'queue:orders' }));
    expect(await commit(store)).toBeUndefined();
    store.close();

    const reopened = new MessageStore(path);
    const contents = reopened.load(now);
    reopened.close();
    expect(comparable(contents)).toEqual(
      comparable({
        messages: [message('queue:orders', 1), full, message('queue:orders#dlq', 4, { deadLetterSource: 'queue:orders' })],
        sequences: new Map([['queue:orders', 3]]),
        sessionStates: [{ queue: 'queue:orders', sessionId: 'kept', state: Buffer.from('state one') }],
        duplicates: [{ entity: 'queue:orders', messageId: 'live-id', expiresAt: now + 60_000 }],
        entities: [entity],
        createdAt: 0,
        notes: [],
      }),
    );
  });

  it('fails a commit the disk refuses, acknowledges nothing of it, and keeps the journal readable after it', async () => {
    const store = new MessageStore(path);
    store.load(Date.now());
    store.putMessage('queue:before', 1, () => message('queue:before', 1));
    expect(await commit(store)).toBeUndefined();
    await withFullDisk(journalPathOf(path), async () => {
      store.putMessage('queue:first', 1, () => message('queue:first', 1));
      store.putSequence('queue:first', 1);
      expect(await commit(store)).toMatchObject({ code: 'ENOSPC' });
    });
    // Queue numbers handed out in the failed commit are defined again by the next record that uses them.
    store.putMessage('queue:second', 1, () => message('queue:second', 1));
    expect(await commit(store)).toBeUndefined();
    store.putMessage('queue:first', 2, () => message('queue:first', 2));
    expect(await commit(store)).toBeUndefined();
    store.close();

    const reopened = new MessageStore(path);
    reopened.load(Date.now());
    reopened.putMessage('queue:third', 1, () => message('queue:third', 1));
    expect(await commit(reopened)).toBeUndefined();
    const { messages, sequences, notes } = reopened.load(Date.now());
    reopened.close();
    expect(notes).toEqual([]);
    expect(sequences.size).toBe(0);
    expect(messages.map((m) => [m.queue, m.sequenceNumber]).sort()).toEqual([
      ['queue:before', 1],
      ['queue:first', 2],
      ['queue:second', 1],
      ['queue:third', 1],
    ]);
  });

  describe('when the journal ends in a torn write', () => {
    /** Writes three commits of two messages each; returns the file's size after each. */
    async function threeCommits(): Promise<number[]> {
      const store = new MessageStore(path);
      store.load(Date.now());
      const sizes: number[] = [];
      for (let i = 0; i < 3; i++) {
        store.putMessage('queue:orders', 2 * i + 1, () => message('queue:orders', 2 * i + 1));
        store.putMessage('queue:orders', 2 * i + 2, () => message('queue:orders', 2 * i + 2));
        expect(await commit(store)).toBeUndefined();
        sizes.push(statSync(journalPathOf(path)).size);
      }
      store.close();
      return sizes;
    }

    it('loads every whole commit and none of a cut one, at every length the file can be cut to', async () => {
      const sizes = await threeCommits();
      const journal = readFileSync(journalPathOf(path));
      for (let length = 0; length <= journal.length; length++) {
        writeFileSync(journalPathOf(path), journal.subarray(0, length));
        const store = new MessageStore(path);
        const { messages, notes } = store.load(Date.now());
        store.close();
        const whole = sizes.filter((size) => size <= length).length;
        expect([length, messages.map((m) => m.sequenceNumber)]).toEqual([length, Array.from({ length: 2 * whole }, (_, i) => i + 1)]);
        expect([length, notes.length]).toEqual([length, length === 0 || length === 8 || sizes.includes(length) ? 0 : 1]);
      }
    });

    it('cuts garbage after the last record, says so, and appends after the last whole record', async () => {
      const sizes = await threeCommits();
      writeFileSync(journalPathOf(path), Buffer.concat([readFileSync(journalPathOf(path)), Buffer.from([12, 0, 0, 0, 1, 2, 3, 4, 9, 9])]));
      const store = new MessageStore(path);
      const { messages, notes } = store.load(Date.now());
      expect(messages).toHaveLength(6);
      expect(notes).toEqual([`${journalPathOf(path)}: 10 bytes after the last intact record (a write torn by a crash) were discarded`]);
      expect(statSync(journalPathOf(path)).size).toBe(sizes[2]);
      store.putMessage('queue:orders', 7, () => message('queue:orders', 7));
      expect(await commit(store)).toBeUndefined();
      store.close();
      const reopened = new MessageStore(path);
      expect(reopened.load(Date.now()).messages.map((m) => m.sequenceNumber)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      reopened.close();
    });

    it('stops at a record whose bytes were changed, rather than reading it', async () => {
      const sizes = await threeCommits();
      const journal = readFileSync(journalPathOf(path));
      journal[sizes[0]! + 20]! ^= 0xff;
      writeFileSync(journalPathOf(path), journal);
      const store = new MessageStore(path);
      expect(store.load(Date.now()).messages.map((m) => m.sequenceNumber)).toEqual([1, 2]);
      store.close();
    });
  });

  describe('when the journal is compacted', () => {
    /** 60 commits of 50 messages of 1 KB, all but every 100th deleted again. */
    async function busyQueue(store: MessageStore): Promise<void> {
      for (let round = 0; round < 60; round++) {
        for (let i = 1; i <= 50; i++) {
          const sequenceNumber = round * 50 + i;
          store.putMessage('queue:orders', sequenceNumber, () => message('queue:orders', sequenceNumber, { payload: Buffer.alloc(1000, sequenceNumber % 251) }));
        }
        store.putSequence('queue:orders', round * 50 + 50);
        expect(await commit(store)).toBeUndefined();
        for (let i = 1; i <= 50; i++) if ((round * 50 + i) % 100) store.deleteMessage('queue:orders', round * 50 + i);
      }
      store.putSessionState('queue:orders', 'session', Buffer.from('state'));
      store.putDuplicate('queue:orders', 'id', Date.now() + 60_000);
      expect(await commit(store)).toBeUndefined();
    }

    it('shrinks the file to the live entries, and loads the same contents', async () => {
      const store = new MessageStore(path);
      store.load(Date.now());
      await busyQueue(store);
      const before = statSync(journalPathOf(path)).size;
      const contents = comparable(store.load(Date.now()));
      expect(store.compact()).toBe(true);
      const after = statSync(journalPathOf(path)).size;
      expect(after).toBe(store.journalBytes);
      expect(after).toBeLessThan(before / 50);
      // Writes after the compaction go into the new file.
      store.putMessage('queue:orders', 3001, () => message('queue:orders', 3001));
      expect(await commit(store)).toBeUndefined();
      store.close();
      const reopened = new MessageStore(path);
      const loaded = reopened.load(Date.now());
      reopened.close();
      expect(loaded.messages.map((m) => m.sequenceNumber)).toEqual([...Array.from({ length: 30 }, (_, i) => (i + 1) * 100), 3001]);
      expect(comparable({ ...loaded, messages: loaded.messages.slice(0, 30) })).toEqual(contents);
    });

    it('compacts by itself once writes pause, when the file is large and mostly dead', async () => {
      const store = new MessageStore(path);
      store.load(Date.now());
      // ~9.6 MB written, ~32 KB live: above the 8 MiB and 2 × live thresholds.
      for (let pass = 0; pass < 3; pass++) await busyQueue(store);
      const written = store.journalBytes;
      expect(written).toBeGreaterThan(8 * 1024 * 1024);
      const deadline = Date.now() + 10_000;
      while (store.journalBytes === written && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(store.journalBytes).toBeLessThan(written / 20);
      store.close();
    });

    it('compacts inside a commit when writes never pause, so the journal of a busy broker stays bounded', () => {
      const store = new MessageStore(path);
      store.load(Date.now());
      store.putMessage('queue:orders', 1, () => message('queue:orders', 1));
      store.flush();
      // 1 MiB messages sent and completed in commits that follow each other without a turn of the event loop
      // in between (the idle compaction's timer never runs): ~140 MiB written, one small message live.
      const payload = Buffer.alloc(1024 * 1024, 7);
      let largest = 0;
      for (let sequenceNumber = 2; sequenceNumber < 142; sequenceNumber++) {
        store.putMessage('queue:orders', sequenceNumber, () => message('queue:orders', sequenceNumber, { payload }));
        store.flush();
        store.deleteMessage('queue:orders', sequenceNumber);
        store.flush();
        largest = Math.max(largest, store.journalBytes);
      }
      const final = store.journalBytes;
      store.close();
      // Compacted at the commit that took it past 128 MiB, not later; after that the file grew again from the live set.
      expect(largest).toBeLessThan(130 * 1024 * 1024);
      expect(final).toBeLessThan(16 * 1024 * 1024);
      expect(statSync(journalPathOf(path)).size).toBe(final);
      const reopened = new MessageStore(path);
      expect(reopened.load(Date.now()).messages.map((m) => m.sequenceNumber)).toEqual([1]);
      reopened.close();
    });

    it('loads the old journal when a compaction was cut short before its rename, and removes what it left', async () => {
      const store = new MessageStore(path);
      store.load(Date.now());
      await busyQueue(store);
      const contents = comparable(store.load(Date.now()));
      store.close();
      // What a crash while the new journal was being written leaves: a partial temporary file beside the old journal.
      writeFileSync(`${journalPathOf(path)}.compacting`, Buffer.from('LAZSBJ01 and a partial record'));
      const reopened = new MessageStore(path);
      expect(comparable(reopened.load(Date.now()))).toEqual(contents);
      reopened.close();
      expect(existsSync(`${journalPathOf(path)}.compacting`)).toBe(false);
    });

    it('loads the new journal when the crash came right after the rename', async () => {
      const store = new MessageStore(path);
      store.load(Date.now());
      await busyQueue(store);
      const contents = comparable(store.load(Date.now()));
      expect(store.compact()).toBe(true);
      // No close: the process "dies" here, leaving the file as the rename left it.
      const reopened = new MessageStore(path);
      expect(comparable(reopened.load(Date.now()))).toEqual(contents);
      reopened.close();
      store.close();
    });
  });

  describe('when writes never pause', () => {
    it('drops expired duplicate-detection entries at a commit, so a busy topic keeps only the ids of its window', () => {
      // Fake timers: the clock moves only when told, and the idle timer (which also prunes) never runs.
      jest.useFakeTimers({ now: Date.parse('2026-12-07T08:00:00Z') });
      try {
        const store = new MessageStore(path);
        store.load(Date.now());
        // Ten minutes of a topic with a 10-second duplicate-detection window, 100 ids a minute.
        for (let minute = 0; minute < 10; minute++) {
          for (let i = 0; i < 100; i++) {
            store.putDuplicate('topic:events', `id-${minute}-${i}`, Date.now() + 10_000);
            store.flush();
          }
          jest.setSystemTime(Date.now() + 61_000);
        }
        store.putDuplicate('topic:events', 'id-last', Date.now() + 10_000);
        store.flush();
        expect(store.duplicateEntries).toBe(1);
        store.close();
      } finally {
        jest.useRealTimers();
      }
    });
  });

  describe('when the store is in format 2 or 1 (all of it in SQLite)', () => {
    const laterTables = `
      CREATE TABLE queues (key TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
      CREATE TABLE messages (
        id INTEGER PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, enqueued_at INTEGER NOT NULL,
        expires_at INTEGER, scheduled_at INTEGER, deferred INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
        session_id TEXT, dead_letter_source TEXT, assigned_message_id TEXT);
      CREATE TABLE sequences (entity TEXT PRIMARY KEY, last INTEGER NOT NULL);
      CREATE TABLE session_states (queue TEXT NOT NULL, session_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (queue, session_id));
      CREATE TABLE duplicates (entity TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (entity, message_id));
      INSERT INTO queues VALUES ('queue:orders', 1), ('queue:orders#dlq', 2);
      INSERT INTO sequences VALUES ('queue:orders', 3);
      INSERT INTO session_states VALUES ('queue:orders', 's1', X'0102');
      INSERT INTO duplicates VALUES ('queue:orders', 'dup', 9999999999999);
    `;

    /** A format-2 store as the version before the journal wrote it. */
    function writeFormat2(): void {
      const db = new DatabaseSync(path);
      db.exec(`
        ${laterTables}
        CREATE TABLE entities (
          key TEXT PRIMARY KEY, kind TEXT NOT NULL, origin TEXT NOT NULL, definition TEXT NOT NULL,
          created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, accessed_at INTEGER NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('created_at', '1234');
        INSERT INTO entities VALUES ('queue:orders', 'queue', 'runtime', '{"name":"orders"}', 1, 2, 3);
        PRAGMA user_version = 2;
      `);
      const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run(2 ** 40 + 1, 'queue:orders', 1, Buffer.from('one'), 10, null, null, 0, 0, null, null, 'assigned');
      insert.run(2 ** 40 + 3, 'queue:orders', 3, Buffer.from('three'), 30, 99_999_999_999_999, 50, 1, 2, 's1', null, null);
      insert.run(2 * 2 ** 40 + 2, 'queue:orders#dlq', 2, Buffer.from('two'), 20, null, null, 0, 5, null, 'queue:orders', null);
      db.close();
    }

    const expected = {
      messages: [
        message('queue:orders', 1, { payload: Buffer.from('one'), enqueuedAt: 10, assignedMessageId: 'assigned' }),
        message('queue:orders', 3, { payload: Buffer.from('three'), enqueuedAt: 30, expiresAt: 99_999_999_999_999, scheduledAt: 50, deferred: true, deliveryCount: 2, sessionId: 's1' }),
        message('queue:orders#dlq', 2, { payload: Buffer.from('two'), enqueuedAt: 20, deliveryCount: 5, deadLetterSource: 'queue:orders' }),
      ],
      sequences: new Map([['queue:orders', 3]]),
      sessionStates: [{ queue: 'queue:orders', sessionId: 's1', state: Buffer.from([1, 2]) }],
      duplicates: [{ entity: 'queue:orders', messageId: 'dup', expiresAt: 9999999999999 }],
      entities: [{ key: 'queue:orders', kind: 'queue', origin: 'runtime', definition: '{"name":"orders"}', createdAt: 1, updatedAt: 2, accessedAt: 3 }] as EntityRecord[],
      createdAt: 1234,
      notes: [],
    } satisfies StoreContents;

    it('moves everything into the journal at the first start, and reads it from there afterwards', async () => {
      writeFormat2();
      const store = new MessageStore(path);
      const contents = store.load(Date.now());
      expect(comparable(contents)).toEqual(comparable(expected));
      expect(contents.createdAt).toBe(1234);
      expect(contents.notes).toEqual([`${journalPathOf(path)}: 3 messages moved out of the format-2 store into the journal`]);
      store.putMessage('queue:orders', 4, () => message('queue:orders', 4));
      expect(await commit(store)).toBeUndefined();
      store.close();

      const db = new DatabaseSync(path);
      expect(db.prepare('PRAGMA user_version').get()).toEqual({ user_version: 3 });
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((row) => row.name)).toEqual(['entities', 'meta']);
      db.close();
      const reopened = new MessageStore(path);
      const again = reopened.load(Date.now());
      reopened.close();
      expect(again.notes).toEqual([]);
      expect(comparable(again)).toEqual(comparable({ ...expected, messages: [...expected.messages.slice(0, 2), message('queue:orders', 4), expected.messages[2]!] }));
    });

    it('migrates again, whole, when a start died after writing the journal but before marking the store', () => {
      writeFormat2();
      // The journal a first, interrupted migration wrote (and a partial one from before), with the SQLite tables still there.
      writeFileSync(journalPathOf(path), Buffer.from('LAZSBJ01'));
      writeFileSync(`${journalPathOf(path)}.compacting`, Buffer.from('LAZ'));
      const store = new MessageStore(path);
      expect(comparable(store.load(Date.now()))).toEqual(comparable(expected));
      store.close();
    });

    /** A format-1 store had no entity records (its entities come from the topology file at the start). */
    const expectedFromFormat1 = { ...expected, entities: [] };

    it('migrates a format-1 store with the later tables (those of format 2, written before the store recorded its version)', () => {
      const db = new DatabaseSync(path);
      db.exec(laterTables);
      const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run(2 ** 40 + 1, 'queue:orders', 1, Buffer.from('one'), 10, null, null, 0, 0, null, null, 'assigned');
      insert.run(2 ** 40 + 3, 'queue:orders', 3, Buffer.from('three'), 30, 99_999_999_999_999, 50, 1, 2, 's1', null, null);
      insert.run(2 * 2 ** 40 + 2, 'queue:orders#dlq', 2, Buffer.from('two'), 20, null, null, 0, 5, null, 'queue:orders', null);
      db.close();
      const store = new MessageStore(path);
      const contents = store.load(Date.now());
      store.close();
      expect(comparable(contents)).toEqual(comparable(expectedFromFormat1));
      expect(contents.notes).toEqual([`${journalPathOf(path)}: 3 messages moved out of the format-1 store into the journal`]);
    });

    it('migrates a format-1 store with the first tables (no row id, the assigned message id inside the payload)', () => {
      const db = new DatabaseSync(path);
      db.exec(`
        ${firstStoreTables}
        INSERT INTO sequences VALUES ('queue:orders', 3);
        INSERT INTO session_states VALUES ('queue:orders', 's1', X'0102');
        INSERT INTO duplicates VALUES ('queue:orders', 'dup', 9999999999999);
      `);
      const insert = db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run('queue:orders', 1, Buffer.from('one'), 10, null, null, 0, 0, null, null);
      insert.run('queue:orders#dlq', 2, Buffer.from('two'), 20, null, null, 0, 5, null, 'queue:orders');
      insert.run('queue:orders', 3, Buffer.from('three'), 30, 99_999_999_999_999, 50, 1, 2, 's1', null);
      db.close();
      const store = new MessageStore(path);
      const contents = store.load(Date.now());
      store.close();
      const [one, ...rest] = expected.messages;
      expect(comparable(contents)).toEqual(comparable({ ...expectedFromFormat1, messages: [{ ...one!, assignedMessageId: null }, ...rest] }));
      expect(contents.notes).toEqual([`${journalPathOf(path)}: 3 messages moved out of the format-1 store into the journal`]);
    });
  });

  it('keeps the contents of a journal written in thousands of commits', async () => {
    const store = new MessageStore(path);
    store.load(Date.now());
    for (let i = 1; i <= 2000; i++) {
      store.putMessage('queue:orders', i, () => message('queue:orders', i, { sessionId: i % 2 ? 'session' : null }));
      if (i % 7 === 0) expect(await commit(store)).toBeUndefined();
    }
    store.close();
    const reopened = new MessageStore(path);
    const { messages } = reopened.load(Date.now());
    reopened.close();
    expect(messages.map((m) => m.sequenceNumber)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect({ ...messages[1236], payload: Buffer.from(messages[1236]!.payload) }).toEqual(message('queue:orders', 1237, { sessionId: 'session' }));
  });
});
