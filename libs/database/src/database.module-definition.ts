import { ConfigurableModuleBuilder, type LoggerService } from '@nestjs/common';
import type { PostgresPool } from '@keyless/auth';
import type { DatabaseSchema } from './schema-migrations.js';

/** Every default of the library, in one place. */
export const databaseDefaults = {
  /** First delay before the start is tried again; doubles per failure. */
  retryDelayInMs: 1_000,
  /** Upper bound of that delay. */
  maxRetryDelayInMs: 30_000,
  /** Budget of the health probe (`SELECT 1`). */
  healthCheckTimeoutInMs: 3_000,
  /**
   * How long a health probe's answer serves further checks. A second: orchestrators probe every few seconds
   * (Kubernetes every 10, App Service every minute) and see every answer fresh, while a monitor or a caller polling
   * the public endpoint 100 times a second costs one query a second.
   */
  healthCheckMaxAgeInMs: 1_000,
  /**
   * How long a shutdown waits for the pool's connections to come back before it closes those still in use. Within the
   * 7 s `@keyless/observability` gives the app to close, so the database is never the reason a stop runs into it.
   */
  closeTimeoutInMs: 5_000,
  isGlobal: true,
} as const;

/** Options of {@link DatabaseModule}. */
export interface DatabaseModuleOptions {
  /** The pool, from `@keyless/auth` (`clients.create('postgres')`): the identity signs in with its token. Ended on shutdown. */
  pool: PostgresPool;
  /** The schemas of the components that share the database (catalog, messaging idempotency, …), applied at start. */
  schemas: readonly DatabaseSchema[];
  /** First delay before a failed start is tried again, in ms; doubles per failure (±20 % jitter). Default: 1 000. */
  retryDelayInMs?: number;
  /** Upper bound of the retry delay, in ms. Default: 30 000. */
  maxRetryDelayInMs?: number;
  /** Budget of the health probe, in ms. Default: 3 000. */
  healthCheckTimeoutInMs?: number;
  /**
   * How long the health probe's answer (up or down) serves further checks, in ms; checks that come while a probe runs
   * share it. Readiness so says `down` for every check more than this after the server went away (within
   * `healthCheckTimeoutInMs`). 0: every check after an answer sends its own probe. Default: 1 000.
   */
  healthCheckMaxAgeInMs?: number;
  /**
   * How long {@link Database.close} waits for connections still checked out of the pool (a handler mid-query, a server
   * that fell silent) before it closes them — their queries fail — and returns, in ms. Default: 5 000.
   */
  closeTimeoutInMs?: number;
  /** Log sink. Default: Nest's `Logger` with context `Database`. */
  logger?: LoggerService;
}

/** Extra options of `DatabaseModule.forRoot`/`forRootAsync`. */
export interface DatabaseModuleExtras {
  /** Register the module globally (one database per process). Default: `true`. */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: DatabaseConfigurableModule,
  /** Injection token of the options: `'DATABASE_MODULE_OPTIONS'`. */
  MODULE_OPTIONS_TOKEN: DATABASE_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<DatabaseModuleOptions>({ moduleName: 'Database' })
  .setClassMethodName('forRoot')
  .setExtras<DatabaseModuleExtras>({ isGlobal: databaseDefaults.isGlobal }, (definition, extras) => ({ ...definition, global: extras.isGlobal ?? databaseDefaults.isGlobal }))
  .build();
