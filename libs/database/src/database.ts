import { Inject, Injectable, Logger, type LoggerService, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { PostgresPool, PostgresPoolClient } from '@keyless/auth';
import { describeError } from './database-errors.js';
import { DATABASE_MODULE_OPTIONS, databaseDefaults, type DatabaseModuleOptions } from './database.module-definition.js';
import { applyMigrations } from './schema-migrations.js';

/**
 * Where the database is in its start.
 * - `starting`: the first attempt runs.
 * - `ready`: the schema is applied; queries may run.
 * - `unavailable`: an attempt failed (server unreachable, sign-in refused, …); the next one is scheduled.
 * - `closed`: the app shut down.
 */
export type DatabaseState = 'starting' | 'ready' | 'unavailable' | 'closed';

/** The start's progress, for readiness and logs. */
export interface DatabaseStatus {
  state: DatabaseState;
  /** `host:port/database`. */
  server: string;
  /** Attempts made so far. */
  attempts: number;
  /** When the state last changed. */
  since: Date;
  /** Why the last attempt failed (first line of the error). */
  lastError?: string;
  /** When the next attempt runs (state `unavailable`). */
  nextAttemptAt?: Date;
}

/**
 * The service's PostgreSQL: the pool, and its schema applied at start. Starting never fails the process: while the
 * server is unreachable or refuses the sign-in, the attempt is repeated with exponential backoff (1 s doubling to
 * 30 s, ±20 %), each failure is logged with its diagnostic, and {@link Database.status} (and so readiness) says why. The app
 * awaits {@link Database.whenReady} before it takes work.
 *
 * @example
 * await app.listen(port);                                               // health answers, not ready
 * if (await app.get(Database).whenReady()) await app.startAllMicroservices(); // only now take messages
 */
@Injectable()
export class Database implements OnModuleInit, OnApplicationShutdown {
  readonly pool: PostgresPool;
  private readonly logger: LoggerService;
  private current: DatabaseStatus;
  private started: Promise<boolean> | undefined;
  private wake: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /** Connections checked out of the pool: a close that outlasts its bound closes them. */
  private readonly inUse = new Set<PostgresPoolClient>();

  constructor(@Inject(DATABASE_MODULE_OPTIONS) private readonly options: DatabaseModuleOptions) {
    this.pool = options.pool;
    this.pool.on('acquire', (client) => this.inUse.add(client));
    this.pool.on('release', (_error, client) => this.inUse.delete(client as PostgresPoolClient));
    this.logger = options.logger ?? new Logger('Database');
    const { host, port, database } = options.pool.options;
    this.current = { state: 'starting', server: `${host ?? 'localhost'}:${port ?? 5432}/${database ?? ''}`, attempts: 0, since: new Date() };
  }

  /** The start's progress. */
  status(): DatabaseStatus {
    return { ...this.current };
  }

  /**
   * Resolves `true` once the schema is applied, `false` if the app shut down first; starts the attempts if they have
   * not started. Never rejects: failed attempts are retried, logged and reported by {@link Database.status}.
   */
  whenReady(): Promise<boolean> {
    this.started ??= this.start();
    return this.started;
  }

  onModuleInit(): void {
    // Started here so readiness reports the database's state from the first probe; nothing awaits it here.
    void this.whenReady();
  }

  /**
   * Stops the attempts and ends the pool (what Nest calls on shutdown). Resolves within `closeTimeoutInMs`: the pool
   * ends once every connection is back, and connections still in use at that bound are closed (their queries fail)
   * rather than waited for.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.set({ state: 'closed' });
      this.wake?.();
      const ended = this.pool.end().catch((error: unknown) => this.logger.warn(`ending the pool: ${describeError(error)}`));
      const bound = this.options.closeTimeoutInMs ?? databaseDefaults.closeTimeoutInMs;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), bound)));
      const outcome = await Promise.race([ended, late]);
      clearTimeout(timer);
      if (outcome !== 'late') return;
      this.logger.warn(`PostgreSQL ${this.current.server}: ${this.inUse.size} connection(s) still in use ${bound} ms into the shutdown (closeTimeoutInMs); closing them.`);
      for (const client of this.inUse) void client.end().catch(() => undefined);
    })();
    return this.closing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private async start(): Promise<boolean> {
    const base = this.options.retryDelayInMs ?? databaseDefaults.retryDelayInMs;
    const cap = Math.max(base, this.options.maxRetryDelayInMs ?? databaseDefaults.maxRetryDelayInMs);
    for (let attempt = 1; ; attempt += 1) {
      if (this.closed) return false;
      try {
        const report = await applyMigrations(this.pool, this.options.schemas);
        if (this.closed) continue;
        this.set({ state: 'ready', attempts: attempt });
        const applied = report.applied.length ? `applied ${report.applied.join('; ')}` : 'schema up to date';
        this.logger.log(`PostgreSQL ${this.current.server}: ready (${applied})${attempt > 1 ? ` after ${attempt} attempts` : ''}.`);
        if (report.unknown.length) this.logger.warn(`PostgreSQL ${this.current.server}: the database has migrations this version does not know (${report.unknown.join(', ')}); a newer version migrated it.`);
        return true;
      } catch (error) {
        if (this.closed) continue;
        const delay = Math.round(Math.min(cap, base * 2 ** (attempt - 1)) * (0.8 + 0.4 * Math.random()));
        this.set({ state: 'unavailable', attempts: attempt, lastError: describeError(error), nextAttemptAt: new Date(Date.now() + delay) });
        // The whole message: a refused sign-in carries its fix on the following lines.
        this.logger.warn(`PostgreSQL ${this.current.server}: not ready (attempt ${attempt}), retrying in ${delay} ms: ${error instanceof Error ? error.message : String(error)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  private get closed(): boolean {
    return this.current.state === 'closed';
  }

  private set(change: Partial<DatabaseStatus> & { state: DatabaseState }): void {
    const { lastError: _lastError, nextAttemptAt: _next, ...kept } = this.current;
    this.current = { ...(change.state === 'ready' ? kept : this.current), ...change, since: change.state === this.current.state ? this.current.since : new Date() };
  }
}
