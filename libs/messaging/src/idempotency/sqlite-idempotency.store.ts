import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { IdempotencyRecord, IdempotencyStore } from './idempotency-store.js';

/**
 * A durable store in SQLite (`node:sqlite`, WAL): handled messages are remembered across restarts, so a
 * message redelivered after a crash is not handled again. Expired records are pruned as new ones arrive.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly db: DatabaseSync;
  private readonly select: StatementSync;
  private readonly upsert: StatementSync;
  private readonly prune: StatementSync;
  private writes = 0;

  /** @param path database file (created with its folder if missing); may be shared with the app's own database. */
  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
      CREATE TABLE IF NOT EXISTS messaging_idempotency (key TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at INTEGER NOT NULL)`);
    this.select = this.db.prepare('SELECT record FROM messaging_idempotency WHERE key = ? AND expires_at >= ?');
    this.upsert = this.db.prepare('INSERT OR REPLACE INTO messaging_idempotency (key, record, expires_at) VALUES (?, ?, ?)');
    this.prune = this.db.prepare('DELETE FROM messaging_idempotency WHERE expires_at < ?');
  }

  async get(key: string): Promise<IdempotencyRecord | undefined> {
    const row = this.select.get(key, Date.now()) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as IdempotencyRecord) : undefined;
  }

  async put(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    this.upsert.run(key, JSON.stringify(record), Date.now() + ttlInMs);
    if (++this.writes % 1000 === 0) this.prune.run(Date.now());
  }

  close(): void {
    this.db.close();
  }
}
