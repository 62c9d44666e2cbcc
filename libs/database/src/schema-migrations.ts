import type { PostgresPool } from '@keyless/auth';
import { DatabaseError } from './database-errors.js';
import { inTransaction } from './transaction.js';

/** One step of a schema: SQL run once, in a transaction with the other pending steps. */
export interface Migration {
  /** 1, 2, 3, … within its schema; never renumbered, never edited once released. */
  version: number;
  /** What it does, for the migrations table and the log. */
  description: string;
  /** Statements, run in order. No `CREATE INDEX CONCURRENTLY` (it cannot run in a transaction). */
  sql: string | readonly string[];
}

/**
 * The tables of one component (the catalog, the messaging idempotency store), versioned on their own. Several
 * components share a database; their versions are kept apart by `name`.
 */
export interface DatabaseSchema {
  /** Stable name, e.g. `catalog`, `messaging`. */
  name: string;
  migrations: readonly Migration[];
  /**
   * Checked after the migrations, in the same transaction: throw a {@link DatabaseError} `SchemaConflict` when the
   * database holds what this code cannot use (e.g. vectors of another dimension). Optional.
   */
  verify?(query: SchemaQuery): Promise<void>;
}

/** Runs a statement in the migration's transaction. */
export type SchemaQuery = <Row extends Record<string, unknown> = Record<string, unknown>>(sql: string, values?: readonly unknown[]) => Promise<Row[]>;

/** What {@link applyMigrations} did. */
export interface MigrationReport {
  /** `<schema> v<version>: <description>` of each migration applied now. */
  applied: string[];
  /** Versions found in the database that this code does not know (a newer instance migrated first). */
  unknown: string[];
}

/** The table that records applied migrations, and the advisory lock key that serialises migrators. */
export const migrationsTable = 'keyless_schema_migrations';
/** `hashtext('keyless_schema_migrations')` would do too; a constant says it plainly. */
const migrationLockKey = 0x6b65796c; // "keyl"

/**
 * Applies the pending migrations of `schemas`, all in one short transaction under `pg_advisory_xact_lock`, so two
 * instances starting at once do not race: the second waits for the first's commit and then finds nothing to do.
 * Rules:
 * 1. Migrations of a schema are numbered 1, 2, 3, … (checked before anything runs: `SchemaInvalid`).
 * 2. A migration runs once: applied versions are recorded in `keyless_schema_migrations` in the same transaction.
 * 3. Any failure rolls the whole transaction back: the database is never left half-migrated.
 * 4. Versions in the database that the code does not know are reported, not refused: during a rolling upgrade the
 *    older instances keep working on the newer schema.
 * 5. The lock is transaction-scoped (no session state: the local engine shares one session between connections).
 */
export async function applyMigrations(pool: PostgresPool, schemas: readonly DatabaseSchema[]): Promise<MigrationReport> {
  for (const schema of schemas) checkNumbering(schema);
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${migrationsTable} (
         schema_name text NOT NULL, version integer NOT NULL, description text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schema_name, version))`,
    );
    const { rows } = await client.query<{ schema_name: string; version: number }>(`SELECT schema_name, version FROM ${migrationsTable}`);
    const report: MigrationReport = { applied: [], unknown: [] };
    const query: SchemaQuery = async <Row extends Record<string, unknown>>(sql: string, values?: readonly unknown[]) =>
      (await client.query<Row>(sql, values as unknown[] | undefined)).rows;
    for (const schema of schemas) {
      const done = new Set(rows.filter((r) => r.schema_name === schema.name).map((r) => r.version));
      for (const migration of schema.migrations) {
        if (done.has(migration.version)) continue;
        for (const statement of typeof migration.sql === 'string' ? [migration.sql] : migration.sql) await client.query(statement);
        await client.query(`INSERT INTO ${migrationsTable} (schema_name, version, description) VALUES ($1, $2, $3)`, [schema.name, migration.version, migration.description]);
        report.applied.push(`${schema.name} v${migration.version}: ${migration.description}`);
      }
      const known = new Set(schema.migrations.map((m) => m.version));
      for (const version of [...done].filter((v) => !known.has(v)).sort((a, b) => a - b)) report.unknown.push(`${schema.name} v${version}`);
      await schema.verify?.(query);
    }
    return report;
  });
}

function checkNumbering(schema: DatabaseSchema): void {
  schema.migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new DatabaseError(
        'SchemaInvalid',
        `Schema "${schema.name}": migration ${i + 1} is numbered ${migration.version}; migrations are numbered 1, 2, 3, … in order, and never renumbered.`,
      );
    }
  });
}
