import type { PostgresPool, PostgresPoolClient } from '@keyless/auth';

/**
 * Runs `work` in one short transaction on one connection of `pool`: committed if it resolves, rolled back if it
 * throws (the error is rethrown). A connection whose transaction could not be ended is closed, not reused.
 * `begin` may carry `SET LOCAL`s after the `BEGIN`, sent in the same round trip. Keep transactions short: the local
 * engine hands its one session to one transaction at a time.
 *
 * @example
 * await inTransaction(pool, (client) => client.query('UPDATE …'), 'BEGIN; SET LOCAL hnsw.ef_search = 100');
 */
export async function inTransaction<T>(pool: PostgresPool, work: (client: PostgresPoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    client.release(broken);
  }
}
