import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { RefusalLogLine } from '@keyless/contracts';

/**
 * One sign-in (the local counterpart of an Entra sign-in log row): a managed identity's token request at its host's
 * identity endpoint, a user's at the tenant's token endpoint, or a login to the local PostgreSQL with an Entra token
 * as the password.
 */
export interface SignInRecord {
  time: string;
  /** The host whose identity endpoint was asked (managed identities; absent when the address named no host). */
  host?: string;
  /**
   * `appservice` (IDENTITY_ENDPOINT), `imds` (AZURE_POD_IDENTITY_AUTHORITY_HOST), `token` (a user's sign-in) or
   * `postgres` (a login to the local Azure Database for PostgreSQL).
   */
  endpoint: 'appservice' | 'imds' | 'token' | 'postgres';
  /** The OAuth grant of a user's sign-in (`password`, `refresh_token`, `authorization_code`). */
  grantType?: string;
  /** Database logins: the client's address and port, the user (role) and the database asked for. */
  client?: string;
  user?: string;
  database?: string;
  /** The identity's name, or the user's UPN. */
  identity?: string;
  clientId?: string;
  principalId?: string;
  resource?: string;
  outcome: 'success' | 'failure';
  /** The host made more token requests than the identity endpoint serves (429); one record per throttling window. */
  throttled?: boolean;
  /** Why a request failed: what was wrong with it, in words a developer can act on. */
  reason?: string;
  correlationId?: string;
}

/**
 * One access decision: an RBAC check of a data plane (`dataAction`) or of the control plane (`action`), or a
 * request refused before any check could run — no or a bad token at the control plane, a token request at an
 * identity endpoint that does not belong to the caller (`reason` says why).
 */
export interface AuthorizationRecord {
  time: string;
  /** Which local resource decided (`management`, `identity`, `serviceBus`, `openAi`, `vision`, …). */
  resource: string;
  /** Object id of the caller; empty when unknown (no token, or a token that does not verify). */
  principalId: string;
  clientId?: string;
  /** The caller's name: an identity's name or a user's UPN. */
  identity?: string;
  /** The control-plane action checked (ARM: `Microsoft.Authorization/roleAssignments/write`, …). */
  action?: string;
  /** The data action checked (data planes). */
  dataAction?: string;
  scope: string;
  decision: 'allowed' | 'denied';
  /**
   * Why a request was refused without an RBAC check (a token for another principal on a Service Bus
   * connection, an invalid token), what the RBAC check lacked, or what was refused after it (an image URL
   * Vision will not fetch).
   */
  reason?: string;
  /** The role assignment that allowed it (id and role name). */
  assignmentId?: string;
  role?: string;
  /** What the caller was doing (`POST /openai/deployments/x/chat/completions`, `attach sender events`, …). */
  operation?: string;
}

/**
 * A request one of the local Azure's HTTP listeners refused before any route saw it: Node's HTTP parser gave up on it
 * (malformed, headers too large, too slow). The fields of the line a service logs for the same refusal (`status`,
 * `kind`, Node's `code`, `client` and `listener` address and port, `notLoggedBefore` after a minute with more than a
 * listener logs; see `refusalLogLines` of @keyless/contracts) and its `message`; never the bytes received.
 */
export type RefusalRecord = RefusalLogLine['fields'] & { time: string; message: string };

/** The kinds of record the logs hold: the sign-in log, the authorization log and the HTTP parsers' refusals. */
export type AuditRecordKind = 'sign-in' | 'authorization' | 'refusal';

/** Filters for the log queries; every field optional. Results are newest first. */
export interface LogQuery {
  since?: string;
  /** Only records before this time (ISO 8601). */
  until?: string;
  principal?: string;
  /** Exact matches on record fields (`identity`, `resource`, `outcome`, `decision`, `host`, `listener.name`, …); a list matches any of its values. */
  where?: Readonly<Record<string, string | readonly string[]>>;
  limit?: number;
}

const defaults = {
  /** Rows kept per log; older rows are pruned at start-up and while it runs. */
  retainedRows: 50_000,
  queryLimit: 100,
};

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /**
   * Rows kept per log. Older rows are pruned at start-up and after every tenth of this many new rows, so a client
   * that keeps sending refused requests (each one a row) cannot grow the database without bound.
   * **Default**: 50000.
   */
  retainedRows?: number;
}

/** The sign-in and authorization logs and the log of refused requests, in the local Azure's SQLite database. */
export class AuditLog {
  private readonly insertSignIn: StatementSync;
  private readonly insertAuthorization: StatementSync;
  private readonly insertRefusal: StatementSync;
  private readonly listeners = new Set<(kind: AuditRecordKind, record: SignInRecord | AuthorizationRecord | RefusalRecord) => void>();
  private readonly retainedRows: number;
  private readonly prune: Record<'sign_ins' | 'authorizations' | 'refusals', { statement: StatementSync; inserted: number }>;

  constructor(
    private readonly db: DatabaseSync,
    options: AuditLogOptions = {},
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS sign_ins (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, principal TEXT, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS authorizations (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, principal TEXT, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS refusals (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, principal TEXT, record TEXT NOT NULL);
    `);
    this.retainedRows = options.retainedRows ?? defaults.retainedRows;
    const pruning = (table: string) => ({ statement: db.prepare(`DELETE FROM ${table} WHERE seq <= (SELECT MAX(seq) FROM ${table}) - ?`), inserted: 0 });
    this.prune = { sign_ins: pruning('sign_ins'), authorizations: pruning('authorizations'), refusals: pruning('refusals') };
    for (const { statement } of Object.values(this.prune)) statement.run(this.retainedRows);
    this.insertSignIn = db.prepare('INSERT INTO sign_ins (time, principal, record) VALUES (?, ?, ?)');
    this.insertAuthorization = db.prepare('INSERT INTO authorizations (time, principal, record) VALUES (?, ?, ?)');
    this.insertRefusal = db.prepare('INSERT INTO refusals (time, principal, record) VALUES (?, NULL, ?)');
  }

  recordSignIn(record: Omit<SignInRecord, 'time'>): void {
    const full = { time: new Date().toISOString(), ...record };
    this.insertSignIn.run(full.time, full.principalId ?? null, JSON.stringify(full));
    this.pruneNow('sign_ins');
    this.emit('sign-in', full);
  }

  recordAuthorization(record: Omit<AuthorizationRecord, 'time'>): void {
    const full = { time: new Date().toISOString(), ...record };
    this.insertAuthorization.run(full.time, full.principalId, JSON.stringify(full));
    this.pruneNow('authorizations');
    this.emit('authorization', full);
  }

  /** Records a request a listener's HTTP parser refused (a line of `refusalLogLines`, which bounds how many). */
  recordRefusal(line: RefusalLogLine): void {
    const full: RefusalRecord = { time: new Date().toISOString(), ...line.fields, message: line.message };
    this.insertRefusal.run(full.time, JSON.stringify(full));
    this.pruneNow('refusals');
    this.emit('refusal', full);
  }

  /** Prunes a log to its retained rows after every tenth of them inserted (one indexed delete, not one per row). */
  private pruneNow(table: 'sign_ins' | 'authorizations' | 'refusals'): void {
    const prune = this.prune[table];
    if (++prune.inserted < Math.max(1, Math.floor(this.retainedRows / 10))) return;
    prune.inserted = 0;
    prune.statement.run(this.retainedRows);
  }

  signIns(query: LogQuery = {}): SignInRecord[] {
    return this.query('sign_ins', query) as SignInRecord[];
  }

  authorizations(query: LogQuery = {}): AuthorizationRecord[] {
    return this.query('authorizations', query) as AuthorizationRecord[];
  }

  /** Requests the listeners' HTTP parsers refused; `where` takes `status`, `kind`, `code`, `listener.name`. */
  refusals(query: LogQuery = {}): RefusalRecord[] {
    return this.query('refusals', query) as RefusalRecord[];
  }

  /** Subscribes to new records (the console view prints them). Returns an unsubscribe function. */
  onRecord(listener: (kind: AuditRecordKind, record: SignInRecord | AuthorizationRecord | RefusalRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(kind: AuditRecordKind, record: SignInRecord | AuthorizationRecord | RefusalRecord): void {
    for (const listener of this.listeners) listener(kind, record);
  }

  private query(table: string, query: LogQuery): unknown[] {
    // A field, or a field of one (`listener.name`): names only, never a JSON path a caller writes.
    const fields = Object.entries(query.where ?? {}).filter(([field]) => /^\w+(\.\w+)?$/.test(field));
    const conditions = fields.map(([field, value]) => `json_extract(record, '$.${field}') IN (${(typeof value === 'string' ? [value] : value).map(() => '?').join(', ') || 'NULL'})`);
    const rows = this.db
      .prepare(
        `SELECT record FROM ${table} WHERE time >= ? AND (? IS NULL OR time < ?) AND (? IS NULL OR principal = ? OR record LIKE ?)` +
          `${conditions.map((c) => ` AND ${c}`).join('')} ORDER BY seq DESC LIMIT ?`,
      )
      .all(
        query.since ?? '',
        query.until ?? null,
        query.until ?? null,
        query.principal ?? null,
        query.principal ?? null,
        `%${query.principal ?? ''}%`,
        ...fields.flatMap(([, value]) => (typeof value === 'string' ? [value] : [...value])),
        query.limit ?? defaults.queryLimit,
      ) as unknown as { record: string }[];
    return rows.map((row) => JSON.parse(row.record) as unknown);
  }
}
