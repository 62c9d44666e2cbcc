import type { LoggerService } from '@nestjs/common';
import {
  AccessDiagnostics,
  AzureClientFactory,
  AzureIdentityService,
  resolveAuthOptions,
  type AuthModuleOptions,
  type PostgresFactoryOptions,
  type PostgresPool,
} from '@keyless/auth';
import { applyMigrations, type DatabaseSchema } from '../schema-migrations.js';

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
  try {
    if (options.schemas?.length) await applyMigrations(pool, options.schemas);
  } catch (error) {
    await close();
    throw error;
  }
  return { pool, identity, diagnostics, clients, close };
}
