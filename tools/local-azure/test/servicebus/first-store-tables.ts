/**
 * The Service Bus store's tables as the first releases created them, before the store recorded its format
 * (user_version 0): no row id and no column for the message id the broker assigned (it was inside the payload).
 * Tests write old homes with them at run time, to hold the migration to what those releases left.
 */
export const firstStoreTables = `
  CREATE TABLE messages (
    queue TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, enqueued_at INTEGER NOT NULL,
    expires_at INTEGER, scheduled_at INTEGER, deferred INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
    session_id TEXT, dead_letter_source TEXT, PRIMARY KEY (queue, seq));
  CREATE TABLE sequences (entity TEXT PRIMARY KEY, last INTEGER NOT NULL);
  CREATE TABLE session_states (queue TEXT NOT NULL, session_id TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (queue, session_id));
  CREATE TABLE duplicates (entity TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (entity, message_id));
`;
