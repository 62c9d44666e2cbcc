import type { SharedSession } from './shared-session.js';

/**
 * PostgreSQL's autovacuum defaults (`autovacuum_vacuum_threshold`, `…_scale_factor`, the insert and analyze ones):
 * a table is vacuumed once its dead rows (or rows inserted since its last vacuum) pass the threshold plus the
 * fraction of its rows, and analyzed once its changed rows do.
 */
const thresholds = {
  vacuum: { base: 50, fraction: 0.2 },
  insert: { base: 1000, fraction: 0.2 },
  analyze: { base: 50, fraction: 0.1 },
};

/** The tables past a threshold, as quoted names, and whether each is to be vacuumed (and analyzed) or only analyzed. */
const candidatesSql = `SELECT name, vacuum_due FROM (
    SELECT format('%I.%I', s.schemaname, s.relname) AS name,
      s.n_dead_tup > ${thresholds.vacuum.base} + ${thresholds.vacuum.fraction} * greatest(c.reltuples, 0)
        OR s.n_ins_since_vacuum > ${thresholds.insert.base} + ${thresholds.insert.fraction} * greatest(c.reltuples, 0) AS vacuum_due,
      s.n_mod_since_analyze > ${thresholds.analyze.base} + ${thresholds.analyze.fraction} * greatest(c.reltuples, 0) AS analyze_due
    FROM pg_catalog.pg_stat_all_tables s JOIN pg_catalog.pg_class c ON c.oid = s.relid
    WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p') tables
  WHERE vacuum_due OR analyze_due
  ORDER BY 1`;

/**
 * What PostgreSQL's autovacuum launcher does for a server, for PGlite, which runs PostgreSQL in single-user mode and
 * so has no background workers: every `intervalInMs` (`autovacuum_naptime`) in which connections ran statements, the
 * tables past autovacuum's thresholds are vacuumed and analyzed as the superuser, in line with the connections'
 * work. Without it, dead rows (every UPDATE and DELETE leaves one) are never reclaimed and the data folder grows
 * without bound under a steady load, while Azure's server keeps it flat.
 */
export class Autovacuum {
  private timer: NodeJS.Timeout | undefined;
  private seenRuns: number;
  private running = false;

  constructor(
    private readonly session: SharedSession,
    private readonly intervalInMs: number,
    private readonly log: (line: string) => void,
  ) {
    this.seenRuns = session.servedRuns;
  }

  start(): void {
    if (!this.intervalInMs || this.timer) return;
    this.timer = setInterval(() => void this.run(), this.intervalInMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: nothing when no connection ran a statement since the last round (an idle server stays idle). */
  private async run(): Promise<void> {
    if (this.running || this.session.servedRuns === this.seenRuns) return;
    this.seenRuns = this.session.servedRuns;
    this.running = true;
    try {
      const { rows } = await this.session.runAsSuperuser(candidatesSql);
      // A statement per table: the connections' work waits for one table at a time, not for the whole round (the
      // engine serves one statement at a time). VACUUM cannot run inside a multi-statement query anyway.
      for (const [name, vacuumDue] of rows) await this.session.runAsSuperuser(`${vacuumDue === 't' ? 'VACUUM (ANALYZE)' : 'ANALYZE'} ${name}`);
    } catch (error) {
      // The engine stopped (the round ends with it), or a table went away between the two statements: the next round
      // looks again.
      if (this.timer) this.log(`postgres: autovacuum: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }
}
