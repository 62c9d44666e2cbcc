import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../config/local-azure-config.js';
import { MessageStore, type PersistedMessage } from './message-store.js';

describe(MessageStore.name, () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'message-store-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens a new store, and reopens one it wrote', () => {
    const path = join(dir, 'servicebus.db');
    new MessageStore(path).close();
    expect(() => new MessageStore(path).close()).not.toThrow();
  });

  it('refuses a store in an older format, naming the file and what to do, instead of losing its messages later', () => {
    const path = join(dir, 'servicebus.db');
    const old = new DatabaseSync(path);
    old.exec('CREATE TABLE messages (id TEXT PRIMARY KEY, queue TEXT, seq INTEGER, payload BLOB, enqueued_at INTEGER, expires_at INTEGER, scheduled_at INTEGER, deferred INTEGER, delivery_count INTEGER, session_id TEXT)');
    old.close();
    expect(() => new MessageStore(path)).toThrow(ConfigError);
    expect(() => new MessageStore(path)).toThrow(`${path}: the Service Bus store was written by another version of the local Azure (format 1`);
  });

  it('forgets a queue number whose commit failed, so queues created after a restart still get numbers of their own', async () => {
    const path = join(dir, 'servicebus.db');
    const message = (queue: string, sequenceNumber: number): PersistedMessage => ({
      queue, sequenceNumber, payload: Buffer.from(queue), enqueuedAt: 1, expiresAt: null, scheduledAt: null, deferred: false,
      deliveryCount: 0, sessionId: null, deadLetterSource: null, assignedMessageId: null,
    });
    const commit = (store: MessageStore) => new Promise<Error | undefined>((resolve) => store.afterCommit(resolve));
    const store = new MessageStore(path);
    store.load(Date.now());
    // A failing commit (a full disk, say), planted through a second connection.
    const other = new DatabaseSync(path);
    other.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    store.putMessage('queue:first', 1, () => message('queue:first', 1));
    expect(await commit(store)).toMatchObject({ message: expect.stringContaining('disk full') });
    other.exec('DROP TRIGGER refuse');
    other.close();

    store.putMessage('queue:second', 1, () => message('queue:second', 1));
    expect(await commit(store)).toBeUndefined();
    store.putMessage('queue:first', 1, () => message('queue:first', 1));
    expect(await commit(store)).toBeUndefined();
    store.close();

    const reopened = new MessageStore(path);
    reopened.load(Date.now());
    reopened.putMessage('queue:third', 1, () => message('queue:third', 1));
    expect(await commit(reopened)).toBeUndefined();
    const { messages } = reopened.load(Date.now());
    reopened.close();
    expect(messages.map((m) => [m.queue, Buffer.from(m.payload).toString()]).sort()).toEqual([
      ['queue:first', 'queue:first'],
      ['queue:second', 'queue:second'],
      ['queue:third', 'queue:third'],
    ]);
  });

  describe('when more than a megabyte is written', () => {
    const row = (sequenceNumber: number): PersistedMessage => ({
      queue: 'queue:orders',
      sequenceNumber,
      payload: Buffer.alloc(1000, sequenceNumber % 251),
      enqueuedAt: 1,
      expiresAt: null,
      scheduledAt: null,
      deferred: false,
      deliveryCount: 0,
      sessionId: sequenceNumber % 2 ? 'session' : null,
      deadLetterSource: null,
      assignedMessageId: null,
    });

    it('checkpoints the WAL into the database file once writes pause, and keeps every message', async () => {
      const path = join(dir, 'servicebus.db');
      const store = new MessageStore(path);
      store.load(Date.now());
      // 30 commits of 100 rows (the multi-row inserts: 64 + 16 + 4 × 5), ~3 MB in all.
      for (let commit = 0; commit < 30; commit++) {
        for (let i = 1; i <= 100; i++) {
          const sequenceNumber = commit * 100 + i;
          store.putMessage('queue:orders', sequenceNumber, () => row(sequenceNumber));
        }
        await new Promise<void>((resolve, reject) => store.afterCommit((error) => (error ? reject(error) : resolve())));
      }
      // Below SQLite's threshold (16 MB here) commits do not checkpoint: the database file grows once writes pause.
      const deadline = Date.now() + 10_000;
      while (statSync(path).size < 1_000_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(statSync(path).size).toBeGreaterThanOrEqual(1_000_000);
      store.close();

      const reopened = new MessageStore(path);
      const { messages } = reopened.load(Date.now());
      reopened.close();
      expect(messages).toHaveLength(3000);
      expect(messages.map((message) => message.sequenceNumber)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
      expect(messages[1236]).toEqual({ ...row(1237), payload: new Uint8Array(row(1237).payload) });
    });
  });
});
