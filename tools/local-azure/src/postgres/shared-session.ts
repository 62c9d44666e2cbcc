import type { PgliteEngine } from './pglite-engine.js';
import { postgresErrors, raiseStatement } from './postgres-errors.js';
import { backend, dataRows, frontend, summarizeResponse, type ErrorFields, type ResponseSummary, type TransactionStatus } from './wire-protocol.js';

/** What the session needs to know about a connection. */
export interface SessionClient {
  /** The role the connection signed in as (`SET SESSION AUTHORIZATION` at each hand-over). */
  readonly role: string;
  /** Run-time settings from the connection's start-up packet (application_name, client_encoding, …). */
  readonly settings: readonly (readonly [string, string])[];
  /** The Parse messages of the connection's named prepared statements, re-made at each hand-over. */
  readonly namedStatements: ReadonlyMap<string, Buffer>;
  /** Delivers the backend's answer to one run of the connection's messages (exactly one call per run). */
  deliver(bytes: Buffer): void;
  /** Closes the connection with a fatal error (the session gave up on it). */
  terminate(error: ErrorFields): void;
}

/** Options of {@link SharedSession}. */
export interface SharedSessionOptions {
  /** Idle time inside a transaction before the connection is closed and rolled back, in ms; 0 never. */
  idleInTransactionTimeoutInMs: number;
  /** Reports an internal problem (the console). */
  log: (line: string) => void;
}

/** Where the session stands, for the admin API. */
export interface SharedSessionStatus {
  /** Connections attached. */
  clients: number;
  /** Whether a connection holds the session (inside a transaction, or between messages of one query). */
  held: boolean;
  /** Connections with work waiting for the session. */
  waiting: number;
  /**
   * Queries of the connections served since the engine started: a simple Query, or an extended query up to its Sync
   * (what one `query()` of node-postgres sends). The superuser's own work (set-up, autovacuum) is not counted.
   */
  queriesServed: number;
}

/** What SQL run as the superuser answered: the summary, and the rows as text. */
export interface SuperuserResult extends ResponseSummary {
  rows: (string | null)[][];
}

type Work =
  /** `canceled`: the run stands in for a cancelled part (see {@link SharedSession.cancel}). */
  | { kind: 'messages'; bytes: Buffer; endsSegment: boolean; canceled?: boolean }
  | { kind: 'system'; sql: string; resolve: (result: SuperuserResult) => void; reject: (error: Error) => void };

interface ClientState {
  client: SessionClient | undefined;
  queue: Work[];
  /** The status the connection last saw in a ReadyForQuery. */
  status: TransactionStatus;
  /** Detached: its work is dropped, and its transaction rolled back if it held the session. */
  gone: boolean;
  /** Its client is not reading its answers: its work waits until it does (see {@link SharedSession.pause}). */
  paused: boolean;
  /** Set while the holder waits on its client (see {@link SharedSession.answersSent}). */
  idleTimer?: NodeJS.Timeout | undefined;
}

/** The superuser PGlite's session starts as (roles and grants are made as it). */
const bootstrapSuperuser = 'postgres';

/**
 * PGlite has one session, shared by every connection. This class hands it to one connection at a time, at
 * transaction boundaries, as a transaction-mode pooler does: a connection holds the session from its first
 * message until the engine answers with ReadyForQuery `I` (idle); meanwhile other connections' messages wait
 * in line, and are served first come, first served. When the session passes to another connection it is
 * reset (`DISCARD ALL`: settings, prepared statements, temporary tables, session advisory locks, LISTEN) and
 * takes that connection's role, start-up settings and named prepared statements. A connection that leaves
 * while holding the session has its transaction rolled back before anyone else runs, so it never wedges the
 * engine.
 *
 * Rules:
 * - Work is a run of frontend messages that ends where the backend answers (Query, Sync, Flush, FunctionCall,
 *   CopyDone, CopyFail), or a part of a long extended query before its Sync, cut by the connection.
 * - The holder's work runs before anyone else's; a connection that releases the session and has more work
 *   queues again behind those already waiting.
 * - A holder idle inside a transaction longer than the timeout is closed (25P03) and rolled back. Its idle time starts
 *   when its last work is answered, and again whenever some of its answers leave for its client
 *   ({@link answersSent}): like PostgreSQL's idle_in_transaction_session_timeout, it counts the wait for the client's
 *   next message, not the time spent sending it results.
 * - A paused connection (its client does not read its answers) runs nothing; others go first, unless it holds
 *   the session. A paused holder is held to the same timeout, counted from the last of its answers that left: one that
 *   reads nothing cannot stop everyone for good, one that reads slowly is not closed.
 * - A connection's start-up settings are applied when it first gets the session; one PostgreSQL refuses
 *   closes the connection with PostgreSQL's error, as a refused start-up would.
 */
export class SharedSession {
  private readonly states = new Map<SessionClient, ClientState>();
  private readonly system: ClientState = { client: undefined, queue: [], status: 'I', gone: false, paused: false };
  private readonly waiting: ClientState[] = [];
  /** The state holding the session, if any. */
  private holder: ClientState | undefined;
  /** Whose role and settings the engine's session carries (undefined: unknown, reset before use). */
  private applied: ClientState | undefined;
  private busy = false;
  private closed = false;
  /** The session may be inside a transaction nobody owns: roll back before the next work. */
  private dirty = false;
  private clientRuns = 0;

  constructor(
    private readonly engine: PgliteEngine,
    private readonly options: SharedSessionOptions,
  ) {}

  /** Attaches a signed-in connection; the session takes its role and settings when its first work runs. */
  attach(client: SessionClient): void {
    this.states.set(client, { client, queue: [], status: 'I', gone: false, paused: false });
  }

  /**
   * Queues a run of frontend messages of an attached connection. `endsSegment`: the run ends with a message the backend
   * answers with ReadyForQuery (Sync, Query, FunctionCall); false for a part of an extended query whose Sync is to come.
   */
  submit(client: SessionClient, bytes: Buffer, endsSegment = true): void {
    const state = this.states.get(client);
    if (state && !state.gone) this.enqueue(state, { kind: 'messages', bytes, endsSegment });
  }

  /**
   * The connection's client has not read enough of its answers: none of its work runs until {@link resume}, as a
   * PostgreSQL backend blocked on a send runs nothing more. The others are served meanwhile, unless it holds the
   * session (inside a transaction): then everyone waits for it, as they would for its locks.
   */
  pause(client: SessionClient): void {
    const state = this.states.get(client);
    if (!state) return;
    state.paused = true;
    this.leaveLine(state);
    if (state === this.holder) this.startIdleTimer(state);
  }

  /** The connection's client reads again: its work queues again (see {@link pause}). */
  resume(client: SessionClient): void {
    const state = this.states.get(client);
    if (!state?.paused) return;
    state.paused = false;
    this.stopIdleTimer(state);
    if (state === this.holder && !state.queue.length && !this.busy) this.startIdleTimer(state);
    if (state.queue.length && state !== this.holder && !this.waiting.includes(state)) this.waiting.push(state);
    this.pump();
  }

  /**
   * Some of the connection's answers left for its client (it reads, maybe slowly): if it holds the session and waits
   * on its client, its idle time starts again.
   */
  answersSent(client: SessionClient): void {
    const state = this.states.get(client);
    if (state && state === this.holder && state.idleTimer) this.startIdleTimer(state);
  }

  /** Runs SQL as the bootstrap superuser (roles and grants, maintenance), in line with the connections' work. */
  runAsSuperuser(sql: string): Promise<SuperuserResult> {
    return new Promise<SuperuserResult>((resolve, reject) => this.enqueue(this.system, { kind: 'system', sql, resolve, reject }));
  }

  /** Runs of connections' messages served so far (not the superuser's): whether anything happened since a look before. */
  get servedRuns(): number {
    return this.clientRuns;
  }

  /**
   * A CancelRequest for `client`: its next run not yet started is answered with PostgreSQL's cancel error. A
   * statement already in the engine runs to its end (PGlite cannot be interrupted).
   */
  cancel(client: SessionClient): void {
    const state = this.states.get(client);
    const index = state?.queue.findIndex((work) => work.kind === 'messages') ?? -1;
    if (!state || index < 0) return;
    const work = state.queue[index]!;
    if (work.kind === 'messages' && !work.endsSegment) {
      // A part of an extended query whose Sync comes in a later run: answering it here with ReadyForQuery would make
      // two for the client's one Sync (and release a holder mid-query). The engine raises the error instead, and
      // then skips the rest of the query up to the client's own Sync, which gets the one ReadyForQuery.
      state.queue[index] = { kind: 'messages', bytes: canceledPart, endsSegment: false, canceled: true };
      return;
    }
    if (state === this.holder) {
      // Inside a transaction the error must abort it, as a cancelled statement does: raise it in the engine.
      state.queue[index] = { kind: 'messages', bytes: frontend.query(raiseStatement(postgresErrors.queryCanceled())), endsSegment: true };
      return;
    }
    state.queue.splice(index, 1);
    if (!state.queue.length) this.leaveLine(state);
    client.deliver(Buffer.concat([backend.errorResponse(postgresErrors.queryCanceled()), backend.readyForQuery(state.status)]));
  }

  /**
   * Detaches a connection that closed: its waiting work is dropped, and if it holds the session its
   * transaction is rolled back before anyone else runs.
   */
  detach(client: SessionClient): void {
    const state = this.states.get(client);
    if (!state) return;
    this.states.delete(client);
    state.gone = true;
    state.client = undefined;
    state.queue = [];
    this.stopIdleTimer(state);
    this.leaveLine(state);
    if (this.applied === state) this.applied = undefined;
    // If its work is in the engine now, run() sees it gone when that work ends.
    if (this.holder === state && !this.busy) this.dirty = true;
    this.pump();
  }

  /** Where the session stands. */
  status(): SharedSessionStatus {
    return { clients: this.states.size, held: !!this.holder, waiting: this.waiting.length, queriesServed: this.clientRuns };
  }

  /** Stops scheduling (the engine is stopping or has crashed); queued work is dropped. */
  close(): void {
    this.closed = true;
    for (const state of [...this.states.values(), this.system]) {
      this.stopIdleTimer(state);
      for (const work of state.queue) if (work.kind === 'system') work.reject(new Error('the PostgreSQL engine stopped'));
      state.queue = [];
    }
  }

  private enqueue(state: ClientState, work: Work): void {
    if (this.closed) {
      if (work.kind === 'system') work.reject(new Error('the PostgreSQL engine stopped'));
      return;
    }
    state.queue.push(work);
    this.stopIdleTimer(state);
    if (state !== this.holder && !state.paused && !this.waiting.includes(state)) this.waiting.push(state);
    this.pump();
  }

  private leaveLine(state: ClientState): void {
    const index = this.waiting.indexOf(state);
    if (index >= 0) this.waiting.splice(index, 1);
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    if (this.dirty) {
      this.busy = true;
      void this.cleanUp().finally(() => this.next());
      return;
    }
    const state = this.holder ?? this.waiting.shift();
    if (!state || state.paused) return; // a paused holder keeps the session: everyone waits for it to read
    const work = state.queue.shift();
    if (!work) return; // the holder has nothing to send yet: everyone waits for it
    this.busy = true;
    this.holder = state;
    void this.run(state, work).finally(() => this.next());
  }

  private next(): void {
    this.busy = false;
    this.pump();
  }

  private async run(state: ClientState, work: Work): Promise<void> {
    let response: Buffer;
    try {
      if (this.applied !== state) {
        await this.handOver(state);
        this.applied = state;
      }
      response = await this.engine.exec(work.kind === 'messages' ? work.bytes : frontend.query(work.sql));
    } catch (error) {
      this.fail(state, work, error);
      return;
    }
    const summary = summarizeResponse(response);
    if (work.kind === 'messages') {
      this.clientRuns++;
      state.client?.deliver(work.canceled ? withoutSetupAnswers(response) : response);
    } else if (summary.error) work.reject(new Error(summary.error.message));
    else work.resolve({ ...summary, rows: dataRows(response) });
    if (summary.lastStatus) state.status = summary.lastStatus;
    // The session is free again only when the answer ends with ReadyForQuery 'I' (not after Flush, COPY, BEGIN).
    const endsReady = response.length >= 6 && response[response.length - 6] === 0x5a; /* Z */
    if (summary.lastStatus === 'I' && endsReady) this.release(state);
    else if (state.gone) this.dirty = true;
    else if (!state.queue.length) this.startIdleTimer(state);
  }

  /** The holder is idle: the next connection in line gets the session; the holder queues again if it has more. */
  private release(state: ClientState): void {
    this.holder = undefined;
    if (state.queue.length && !state.gone && !state.paused && !this.waiting.includes(state)) this.waiting.push(state);
  }

  /** Resets the session and gives it `state`'s role, settings and named prepared statements. */
  private async handOver(state: ClientState): Promise<void> {
    const client = state.client;
    const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
    const settings = (client?.settings ?? []).map(([name, value]) => `pg_catalog.set_config(${literal(name)}, ${literal(value)}, false)`);
    // PGlite's session starts without a recorded session_authorization, so DISCARD ALL (SET SESSION
    // AUTHORIZATION DEFAULT) keeps the previous role: the role is always set by name.
    const steps = [
      frontend.query('DISCARD ALL'),
      frontend.query(`SET SESSION AUTHORIZATION ${quoteIdentifier(client?.role ?? bootstrapSuperuser)}${settings.length ? `; SELECT ${settings.join(', ')}` : ''}`),
    ];
    const summary = summarizeResponse(await this.engine.exec(Buffer.concat(steps)));
    if (summary.error) throw new SessionSetupError(summary.error.code, summary.error.message);
    if (client?.namedStatements.size) {
      // Each with its own Sync: a statement that no longer parses (a dropped table) fails alone, and its
      // Bind then gets "prepared statement does not exist", as an invalidated statement would error.
      await this.engine.exec(Buffer.concat([...client.namedStatements.values()].flatMap((parse) => [parse, frontend.sync()])));
    }
  }

  private fail(state: ClientState, work: Work, error: unknown): void {
    this.applied = undefined;
    this.holder = undefined;
    if (error instanceof SessionSetupError) {
      // A start-up setting PostgreSQL refuses: fatal, as at a real start-up. The session is idle (the setup
      // ran outside any transaction), and the next connection resets it.
      if (work.kind === 'system') work.reject(error);
      state.client?.terminate({ severity: 'FATAL', code: error.code, message: error.message });
      return;
    }
    // The engine failed while running this work: end whatever it left open before anyone else runs.
    this.dirty = true;
    this.options.log(`postgres: the engine failed while serving a connection: ${(error as Error)?.message ?? String(error)}`);
    if (work.kind === 'system') work.reject(error as Error);
    state.client?.terminate(postgresErrors.engineCrashed());
  }

  /**
   * Ends whatever a departed or failed holder left open: COPY, an extended query without Sync, a transaction
   * block. PostgreSQL ignores CopyFail outside COPY and Sync outside an extended query.
   */
  private async cleanUp(): Promise<void> {
    this.dirty = false;
    this.holder = undefined;
    this.applied = undefined;
    try {
      const summary = summarizeResponse(await this.engine.exec(Buffer.concat([frontend.copyFail('the client disconnected'), frontend.sync(), frontend.query('ROLLBACK')])));
      if (summary.lastStatus !== 'I') this.options.log(`postgres: the session is in state ${summary.lastStatus ?? 'unknown'} after rolling back a departed connection`);
    } catch (error) {
      this.options.log(`postgres: rolling back a departed connection failed: ${(error as Error).message}`);
    }
  }

  private startIdleTimer(state: ClientState): void {
    const timeout = this.options.idleInTransactionTimeoutInMs;
    if (!timeout || state.gone) return;
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(() => {
      state.idleTimer = undefined;
      if (this.holder !== state || (state.queue.length && !state.paused) || state.gone) return;
      const client = state.client!;
      this.detach(client);
      client.terminate(postgresErrors.idleInTransactionTimeout());
    }, timeout);
    state.idleTimer.unref();
  }

  private stopIdleTimer(state: ClientState): void {
    clearTimeout(state.idleTimer);
    state.idleTimer = undefined;
  }
}

/** What replaces a cancelled part of an extended query: it raises PostgreSQL's cancel error, and has no Sync. */
const canceledPart = frontend.parseBindExecute(raiseStatement(postgresErrors.queryCanceled()));

/** The answer to {@link canceledPart} without its ParseComplete and BindComplete, which the client did not ask for. */
function withoutSetupAnswers(response: Buffer): Buffer {
  let offset = 0;
  if (response[offset] === 0x31 /* 1 */) offset += 5;
  if (response[offset] === 0x32 /* 2 */) offset += 5;
  return response.subarray(offset);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A hand-over statement failed (a start-up setting PostgreSQL refuses). */
class SessionSetupError extends Error {
  override readonly name = 'SessionSetupError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
