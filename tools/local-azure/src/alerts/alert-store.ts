import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AlertRuleId, AlertSeverity } from './alert-rules.js';

/** A name/value pair that tells alerts of one rule apart (`essentials` dimensions in the common alert schema). */
export interface AlertDimension {
  name: string;
  value: string;
}

/** One alert: a rule's condition became true for one set of dimensions, and perhaps cleared again. */
export interface Alert {
  /** A GUID, stable across the alert's life (fired → resolved). */
  id: string;
  rule: AlertRuleId;
  ruleName: string;
  severity: AlertSeverity;
  /** Identifies the condition within the rule (its dimensions joined): one open alert per rule and key. */
  key: string;
  monitorCondition: 'Fired' | 'Resolved';
  dimensions: AlertDimension[];
  /** ARM ids of what the alert is about (`alertTargetIDs`). */
  targets: string[];
  /** One line saying what fired it, naming the identity, action, resource or entity. */
  summary: string;
  /** The record that fired it, or the latest one while it fired (a denial, a failed sign-in, the deleted assignment, the count). */
  evidence: Record<string, unknown>;
  /** How many matching events were seen while it fired (the metric value for `dead-lettered-messages`). */
  count: number;
  firedAt: string;
  lastEventAt: string;
  resolvedAt?: string;
  /** Why it resolved. */
  resolution?: string;
}

/** Filters of {@link AlertStore.list}; newest first. */
export interface AlertQuery {
  state?: Alert['monitorCondition'];
  rule?: AlertRuleId;
  /** **Default**: 100. */
  limit?: number;
}

const defaults = {
  /** Alerts kept; older resolved ones are pruned at start-up. */
  retainedAlerts: 5_000,
  queryLimit: 100,
};

/** The alerts, in the local Azure's SQLite database (they survive restarts, like Azure Monitor's alert history). */
export class AlertStore {
  private readonly upsertStatement: StatementSync;

  constructor(private readonly db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS alerts (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, rule TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL)`);
    db.prepare(`DELETE FROM alerts WHERE state = 'Resolved' AND seq <= (SELECT MAX(seq) FROM alerts) - ?`).run(defaults.retainedAlerts);
    this.upsertStatement = db.prepare(
      'INSERT INTO alerts (id, rule, key, state, record) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, record = excluded.record',
    );
  }

  save(alert: Alert): void {
    this.upsertStatement.run(alert.id, alert.rule, alert.key, alert.monitorCondition, JSON.stringify(alert));
  }

  /** Alerts that are still firing (read once at start; the engine keeps them in memory afterwards). */
  firing(): Alert[] {
    return this.list({ state: 'Fired', limit: defaults.retainedAlerts });
  }

  list(query: AlertQuery = {}): Alert[] {
    const rows = this.db
      .prepare('SELECT record FROM alerts WHERE (? IS NULL OR state = ?) AND (? IS NULL OR rule = ?) ORDER BY seq DESC LIMIT ?')
      .all(query.state ?? null, query.state ?? null, query.rule ?? null, query.rule ?? null, query.limit ?? defaults.queryLimit) as unknown as { record: string }[];
    return rows.map((row) => JSON.parse(row.record) as Alert);
  }

  get(id: string): Alert | undefined {
    const row = this.db.prepare('SELECT record FROM alerts WHERE id = ?').get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as Alert) : undefined;
  }
}
