import type { PostgresPool, PostgresPoolClient, QueryResult, QueryResultRow } from '@keyless/auth';

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

/**
 * Runs `script` — several statements, `BEGIN; SET LOCAL …; SELECT …; COMMIT` — in one round trip (the simple query
 * protocol, so no parameters: write values with `sqlLiteral`) and returns each statement's result. If a statement
 * fails, the server skips the rest and leaves the transaction aborted: it is rolled back here before the connection
 * goes back to the pool (closed instead if that fails too).
 */
export async function runScript<Row extends QueryResultRow = QueryResultRow>(pool: PostgresPool, script: string): Promise<QueryResult<Row>[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const results = (await client.query(script)) as unknown as QueryResult<Row> | QueryResult<Row>[];
    return Array.isArray(results) ? results : [results];
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    client.release(broken);
  }
}
