import type { LoggerService } from '@nestjs/common';
import { AzureClientFactory, AzureIdentityService, type AuthModuleOptions, type PostgresFactoryOptions, type PostgresPool } from '@keyless/auth';
import { AccessDiagnostics, resolveAuthOptions } from '@keyless/auth/diagnostics';
import { isDatabaseUnavailable } from '../database-errors.js';
import { applyMigrations, type DatabaseSchema } from '../schema-migrations.js';

/** How long {@link openTestDatabase} waits for the local engine's first start (a spec's set-up has 120 s). */
const firstStartBudgetInMs = 100_000;

/** Options of {@link openTestDatabase}. */
export interface TestDatabaseOptions {
  /** Schemas to apply before returning. Default: none. */
  schemas?: readonly DatabaseSchema[];
  /** Overrides of the pool (another user, port, pool size, …). */
  pool?: PostgresFactoryOptions;
  /** Overrides of the auth options (token timing, logger, …). */
  auth?: Partial<AuthModuleOptions>;
}

/** A pool as a service has one, with the identity behind it. */
export interface TestDatabase {
  pool: PostgresPool;
  identity: AzureIdentityService;
  diagnostics: AccessDiagnostics;
  clients: AzureClientFactory;
  /** Ends the pool and stops the identity's refreshes. */
  close(): Promise<void>;
}

/** Keeps the auth library's warnings and errors, drops its informational lines. */
const quiet: LoggerService = { log: () => undefined, warn: () => undefined, error: (message: unknown) => process.stderr.write(`${String(message)}\n`) };

/**
 * A pool built exactly as the services build theirs — `@keyless/auth`'s `create('postgres')` with the host's
 * managed identity, libpq's settings from its env file (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`) — against the
 * local Azure's PostgreSQL, optionally with schemas applied. Call it after `enterHost` (one identity per process).
 *
 * @example
 * const env = test.enterHost('recommendation');
 * const db = await openTestDatabase(env, { schemas: [idempotencySchema] });
 */
export async function openTestDatabase(env: Readonly<Record<string, string | undefined>>, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const resolved = resolveAuthOptions({
    clientId: env.AZURE_CLIENT_ID!,
    startupAccessCheck: false,
    logger: quiet,
    resources: {
      postgres: {
        host: env.PGHOST!,
        port: Number(env.PGPORT ?? 5432),
        database: env.PGDATABASE!,
        user: env.PGUSER!,
        ...(env.POSTGRES_SERVER_RESOURCE_ID ? { resourceId: env.POSTGRES_SERVER_RESOURCE_ID } : {}),
      },
    },
    ...options.auth,
  });
  const identity = new AzureIdentityService(resolved);
  const diagnostics = new AccessDiagnostics(resolved, identity);
  const clients = new AzureClientFactory(resolved, identity, diagnostics);
  const pool = clients.create('postgres', options.pool);
  const close = async (): Promise<void> => {
    await pool.end().catch(() => undefined);
    identity.close();
  };
  // The local engine starts with its first connection; on a loaded machine that start can outlast one connection's
  // 10 s budget (every test of a file then failed in its set-up), so the schemas are applied once it answers.
  const deadline = Date.now() + firstStartBudgetInMs;
  for (;;) {
    try {
      if (options.schemas?.length) await applyMigrations(pool, options.schemas);
      break;
    } catch (error) {
      if (isDatabaseUnavailable(error) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      await close();
      throw error;
    }
  }
  return { pool, identity, diagnostics, clients, close };
}
