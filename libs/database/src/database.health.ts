import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { Database } from './database.js';
import { describeError } from './database-errors.js';
import { DATABASE_MODULE_OPTIONS, databaseDefaults, type DatabaseModuleOptions } from './database.module-definition.js';

/** What the indicator reports. A type, not an interface: Terminus wants an index signature. */
export type DatabaseHealthDetails = {
  server: string;
  state: string;
  /** Connections of the pool: open, idle, callers waiting for one. */
  pool: { total: number; idle: number; waiting: number };
  /** Round trip of the probe, in ms (when it answered). */
  latencyInMs?: number;
  /** Why the status is `down`. */
  message?: string;
};

/**
 * Terminus health indicator of the database.
 * Rules:
 * - `down` while the schema is not applied (the server was unreachable or refused the sign-in at start), with why.
 * - `down` when `SELECT 1` fails or takes longer than `healthCheckTimeoutInMs` (the server went away mid-run).
 * - `up` otherwise, with the probe's round trip and the pool's connections.
 */
@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(Database) private readonly database: Database,
    @Inject(DATABASE_MODULE_OPTIONS) private readonly options: DatabaseModuleOptions,
  ) {}

  /** The indicator's result under `key`. Default key: `database`. */
  async isHealthy<const Key extends string = 'database'>(key: Key = 'database' as Key): Promise<HealthIndicatorResult<Key>> {
    const session = this.indicators.check(key);
    const status = this.database.status();
    const { pool } = this.database;
    const details: DatabaseHealthDetails = { server: status.server, state: status.state, pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } };
    if (status.state !== 'ready') {
      return session.down({ ...details, message: status.lastError ? `not ready after ${status.attempts} attempt(s): ${status.lastError}` : `not ready (${status.state})` });
    }
    const timeout = this.options.healthCheckTimeoutInMs ?? databaseDefaults.healthCheckTimeoutInMs;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        pool.query('SELECT 1'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to SELECT 1 within ${timeout} ms`)), timeout))),
      ]);
      return session.up({ ...details, latencyInMs: Math.round((performance.now() - started) * 10) / 10 });
    } catch (error) {
      return session.down({ ...details, message: describeError(error) });
    } finally {
      clearTimeout(timer);
    }
  }
}
