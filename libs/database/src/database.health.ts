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
  /** How long ago the probe's answer arrived, in ms (it answers every check for `healthCheckMaxAgeInMs`). */
  ageInMs?: number;
  /** Why the status is `down`. */
  message?: string;
};

/** What one `SELECT 1` found. */
type ProbeOutcome = { up: true; latencyInMs: number } | { up: false; message: string };

/**
 * Terminus health indicator of the database.
 * Rules:
 * - `down` while the schema is not applied (the server was unreachable or refused the sign-in at start), with why.
 * - `down` when `SELECT 1` fails or takes longer than `healthCheckTimeoutInMs` (the server went away mid-run).
 * - `up` otherwise, with the probe's round trip and the pool's connections.
 * - One probe at a time: checks that come while one runs share its answer, and checks that come within
 *   `healthCheckMaxAgeInMs` of an answer reuse it, up or down. A flood of readiness probes (every instance of a load
 *   balancer, a monitor, a caller of the public endpoint) so costs at most one pool connection and one query per
 *   `healthCheckMaxAgeInMs` plus its round trip, and never a sign-in per probe while the server refuses them. A probe
 *   that timed out leaves its query to the pool (it ends when the connection does): against a silent server that is
 *   one connection per `healthCheckTimeoutInMs` + `healthCheckMaxAgeInMs`, not one per check.
 * - So a check that comes more than `healthCheckMaxAgeInMs` after the server went away answers `down`, within
 *   `healthCheckTimeoutInMs` (at once when the connection is refused or closed).
 */
@Injectable()
export class DatabaseHealthIndicator {
  /** The `SELECT 1` running now, shared by every check that comes meanwhile. */
  private probing: Promise<ProbeOutcome> | undefined;
  /** The last answer, and when it arrived (`performance.now()`). */
  private last: { outcome: ProbeOutcome; at: number } | undefined;

  constructor(
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(Database) private readonly database: Database,
    @Inject(DATABASE_MODULE_OPTIONS) private readonly options: DatabaseModuleOptions,
  ) {}

  /** The indicator's result under `key`. Default key: `database`. */
  async isHealthy<const Key extends string = 'database'>(key: Key = 'database' as Key): Promise<HealthIndicatorResult<Key>> {
    const session = this.indicators.check(key);
    const status = this.database.status();
    if (status.state !== 'ready') {
      return session.down({ ...this.details(), message: status.lastError ? `not ready after ${status.attempts} attempt(s): ${status.lastError}` : `not ready (${status.state})` });
    }
    const maxAge = this.options.healthCheckMaxAgeInMs ?? databaseDefaults.healthCheckMaxAgeInMs;
    const reused = this.last && performance.now() - this.last.at < maxAge ? this.last : undefined;
    const outcome = reused?.outcome ?? (await (this.probing ??= this.probe()));
    const age = reused ? { ageInMs: Math.round(performance.now() - reused.at) } : {};
    return outcome.up ? session.up({ ...this.details(), latencyInMs: outcome.latencyInMs, ...age }) : session.down({ ...this.details(), ...age, message: outcome.message });
  }

  private details(): DatabaseHealthDetails {
    const { server, state } = this.database.status();
    const { pool } = this.database;
    return { server, state, pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } };
  }

  /** One `SELECT 1` within the budget; never rejects. Its answer is kept for the checks of the next `healthCheckMaxAgeInMs`. */
  private async probe(): Promise<ProbeOutcome> {
    const timeout = this.options.healthCheckTimeoutInMs ?? databaseDefaults.healthCheckTimeoutInMs;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let outcome: ProbeOutcome;
    try {
      await Promise.race([
        this.database.pool.query('SELECT 1'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to SELECT 1 within ${timeout} ms`)), timeout))),
      ]);
      outcome = { up: true, latencyInMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (error) {
      outcome = { up: false, message: describeError(error) };
    } finally {
      clearTimeout(timer);
    }
    this.last = { outcome, at: performance.now() };
    this.probing = undefined;
    return outcome;
  }
}
