import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../config/local-azure-config.js';
import { MessageStore } from './message-store.js';

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
});
