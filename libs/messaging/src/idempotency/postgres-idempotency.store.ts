import type { PostgresPool } from '@keyless/auth';
import type { DatabaseSchema } from '@keyless/database';
import type { ClaimOptions, IdempotencyClaim, IdempotencyRecord, IdempotencyStore } from './idempotency-store.js';

const table = 'messaging_handled_messages';

/**
 * The table of {@link PostgresIdempotencyStore}, as a schema for `DatabaseModule` (applied at start with the app's
 * other schemas). One row per message: `running` with its holder and lease, or `done` with its record.
 */
export const idempotencySchema: DatabaseSchema = {
  name: 'messaging',
  migrations: [
    {
      version: 1,
      description: 'handled messages: a row per message being handled (with a lease) or handled (with its reply)',
      sql: [
        `CREATE TABLE ${table} (
           key text PRIMARY KEY,
           state text NOT NULL CHECK (state IN ('running', 'done')),
           owner text,
           lease_expires_at timestamptz,
           record jsonb,
           expires_at timestamptz NOT NULL)`,
        `CREATE INDEX ${table}_expires_at ON ${table} (expires_at)`,
      ],
    },
  ],
};

/** Defaults of the store. */
const defaults = {
  /** Expired rows are deleted after every this many claims, at most this many at a time. */
  pruneEvery: 1_000,
  pruneBatch: 1_000,
};

interface ClaimRow {
  claimed: boolean;
  state: 'running' | 'done' | null;
  owner: string | null;
  record: IdempotencyRecord | null;
  lease_remaining_ms: number | null;
}

/**
 * The idempotency store of a scaled-out service: a PostgreSQL table shared by every instance (the rules are those of
 * {@link IdempotencyStore}). Times are the database's (`now()`), so instances with skewed clocks agree on leases.
 * Each call is one statement: no transaction is held while a handler runs.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  private claims = 0;

  /** @param pool the service's pool (from `@keyless/auth`); {@link idempotencySchema} must be applied. */
  constructor(private readonly pool: PostgresPool) {}

  async claim(key: string, owner: string, { leaseInMs, ttlInMs }: ClaimOptions): Promise<IdempotencyClaim> {
    if (++this.claims % defaults.pruneEvery === 0) void this.prune();
    const values = [key, owner, Math.round(leaseInMs), Math.round(ttlInMs)];
    // Most messages are new: one plain insert claims them.
    const fresh = await this.pool.query(
      `INSERT INTO ${table} (key, state, owner, lease_expires_at, record, expires_at)
       VALUES ($1, 'running', $2, now() + $3 * interval '1 millisecond', NULL, now() + $4 * interval '1 millisecond')
       ON CONFLICT (key) DO NOTHING`,
      values,
    );
    if (fresh.rowCount) return { status: 'claimed' };
    for (;;) {
      // The outer SELECT sees the row as it was before the INSERT: the row that kept the claim from being taken.
      const { rows } = await this.pool.query<ClaimRow>(
        `WITH taken AS (
           INSERT INTO ${table} AS m (key, state, owner, lease_expires_at, record, expires_at)
           VALUES ($1, 'running', $2, now() + $3 * interval '1 millisecond', NULL, now() + $4 * interval '1 millisecond')
           ON CONFLICT (key) DO UPDATE
             SET state = 'running', owner = EXCLUDED.owner, lease_expires_at = EXCLUDED.lease_expires_at, record = NULL, expires_at = EXCLUDED.expires_at
             WHERE m.expires_at < now() OR (m.state = 'running' AND (m.lease_expires_at < now() OR m.owner = EXCLUDED.owner))
           RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM taken) AS claimed, m.state, m.owner, m.record,
                GREATEST(0, EXTRACT(EPOCH FROM (m.lease_expires_at - now())) * 1000)::float8 AS lease_remaining_ms
         FROM (SELECT 1) AS one LEFT JOIN ${table} AS m ON m.key = $1`,
        values,
      );
      const row = rows[0]!;
      if (row.claimed) return { status: 'claimed' };
      if (row.state === 'done') return { status: 'done', record: row.record ?? { handledAt: 0 } };
      if (row.state === 'running') return { status: 'running', owner: row.owner ?? 'unknown', leaseRemainingInMs: row.lease_remaining_ms ?? 0 };
      // Another instance inserted the row after this statement's snapshot was taken: ask again.
    }
  }

  async renew(key: string, owner: string, leaseInMs: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE ${table} SET lease_expires_at = now() + $3 * interval '1 millisecond'
       WHERE key = $1 AND owner = $2 AND state = 'running'`,
      [key, owner, Math.round(leaseInMs)],
    );
    return (rowCount ?? 0) > 0;
  }

  async complete(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${table} (key, state, owner, lease_expires_at, record, expires_at)
       VALUES ($1, 'done', NULL, NULL, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET state = 'done', owner = NULL, lease_expires_at = NULL, record = EXCLUDED.record, expires_at = EXCLUDED.expires_at`,
      [key, JSON.stringify(record), Math.round(ttlInMs)],
    );
  }

  async release(key: string, owner: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${table} WHERE key = $1 AND owner = $2 AND state = 'running'`, [key, owner]);
  }

  /** Deletes a batch of rows past their TTL (best effort: a failure is retried at the next prune). */
  private async prune(): Promise<void> {
    await this.pool
      .query(`DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE expires_at < now() LIMIT $1)`, [defaults.pruneBatch])
      .catch(() => undefined);
  }
}
