import { DatabaseSync } from 'node:sqlite';

/**
 * Opens a SQLite database in WAL mode with `synchronous=NORMAL`: a committed transaction survives a
 * process kill (only power loss can drop the last ones), at a small cost per commit.
 */
export function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
  return db;
}
