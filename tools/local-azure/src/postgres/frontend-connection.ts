import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { DatabasePrincipal } from '../data-plane.js';
import type { EntraLogin } from './entra-login.js';
import { postgresErrors, raiseStatement } from './postgres-errors.js';
import type { SessionClient, SharedSession } from './shared-session.js';
import {
  backend,
  backendMessages,
  frontend,
  PacketReader,
  parseStartupMessage,
  ProtocolViolationError,
  sqlText,
  startupCodes,
  type ErrorFields,
  type StartupMessage,
} from './wire-protocol.js';

/** What a connection needs from its server. */
export interface FrontendServer {
  readonly secureContext: SecureContext;
  readonly login: EntraLogin;
  readonly maxMessageBytes: number;
  /**
   * Bytes a signed-in connection may have waiting for the engine, and bytes of answers its client has not read, before
   * the connection stops reading from its client (see {@link FrontendConnection}).
   */
  readonly maxBufferedBytes: number;
  readonly authenticationTimeoutInMs: number;
  /** Counts the connection against the connection limit; false when the limit is reached. */
  admit(connection: FrontendConnection): boolean;
  /** Creates the principal's role if the engine does not have it yet; resolves with the session to attach to. */
  sessionFor(principal: DatabasePrincipal): Promise<ServedSession>;
  /** A CancelRequest arrived for this process id and secret key. */
  cancel(processId: number, secretKey: number): void;
  /** The connection closed. */
  closed(connection: FrontendConnection): void;
}

/** The session a signed-in connection attaches to, and what its engine reports. */
export interface ServedSession {
  session: SharedSession;
  /** ParameterStatus values of the engine (server_version, TimeZone, …). */
  parameters: ReadonlyMap<string, string>;
  /** Run-time settings: lower-case name → context. */
  settings: ReadonlyMap<string, string>;
}

/** A named Parse of a run, kept once the engine confirms it (ParseComplete). */
interface PendingParse {
  name: string;
  message: Buffer;
}

/** A run handed to the session and not yet answered. */
interface SubmittedRun {
  bytes: number;
  /** Its Parses, per segment. */
  parses: PendingParse[][];
}

type Phase = 'startup' | 'password' | 'authenticating' | 'ready' | 'closed';

/**
 * Frontend message types of the session phase (Bind, Close, CopyData/Done/Fail, Describe, Execute, Flush,
 * FunctionCall, Parse, Query, Sync; Terminate is handled here). PGlite's engine never returns from any other
 * type, so those end the connection as PostgreSQL does, and never reach it.
 */
const sessionMessages = new Set(['B', 'C', 'd', 'c', 'f', 'D', 'E', 'H', 'F', 'P', 'Q', 'S']);
/** Messages after which the backend answers: the end of a run handed to the session. */
const answeredAfter = new Set(['Q', 'S', 'H', 'F', 'c', 'f']);
/** Messages the backend answers with ReadyForQuery: a run ending with one ends a segment (see {@link SharedSession.submit}). */
const endsSegment = new Set(['Q', 'S', 'F']);
/** Start-up parameters that are not run-time settings. */
const notSettings = new Set(['user', 'database', 'options', 'replication']);
/**
 * Answers go to the socket a slice at a time, the next once the last has reached the network: each slice leaving is
 * the client reading (see {@link SharedSession.answersSent}). The size of a socket's buffer and of a TLS record.
 */
const answerSliceBytes = 16 * 1024;

/**
 * One client connection to the local PostgreSQL: the start-up negotiation (SSLRequest → TLS with the local
 * CA's server certificate, GSSENCRequest → refused, CancelRequest), Entra authentication with a cleartext
 * password request, then the relay of the client's messages to the shared session, cut into runs that end
 * where the backend answers.
 *
 * Backpressure, as PostgreSQL's backend has it (it reads the next message only after writing the last answer, and
 * blocks while its client does not read): the connection stops reading from its client while more than
 * `maxBufferedBytes` of its messages wait for the engine, and while as many bytes of answers wait for the client to
 * read them — then the session also runs none of its work ({@link SharedSession.pause}), and serves the others. So a
 * client that pipelines without reading costs a bounded amount of memory; one that reads gets every answer, in order.
 * Answers are written a slice at a time, and each slice that leaves tells the session its client still reads, however
 * slowly, as a PostgreSQL backend sending results is not idle.
 */
export class FrontendConnection implements SessionClient {
  readonly processId: number;
  readonly secretKey: number;
  /** Address and port of the client. */
  readonly client: string;
  role = '';
  settings: (readonly [string, string])[] = [];
  /** Named prepared statements the engine parsed for this connection (re-made after a hand-over). */
  readonly namedStatements = new Map<string, Buffer>();
  private phase: Phase = 'startup';
  private socket: Socket;
  private encrypted = false;
  private readonly reader: PacketReader;
  private run: Buffer[] = [];
  private runBytes = 0;
  /** Execute messages in the run being cut. */
  private runExecutes = 0;
  /** Parses of the run being cut, per segment (a Sync or Query ends a segment). */
  private runParses: PendingParse[][] = [[]];
  /** The runs handed to the session and not yet answered, in order. */
  private readonly submitted: SubmittedRun[] = [];
  /** Bytes of the runs in `submitted`. */
  private submittedBytes = 0;
  /** Answers not yet written to the socket, in order. */
  private readonly answers: Buffer[] = [];
  /** Bytes of `answers`. */
  private answerBytes = 0;
  /** A slice of answers is on its way to the network (its write has not completed). */
  private sendingSlice = false;
  /** At least `maxBufferedBytes` of answers are waiting for the client to read them. */
  private unreadAnswers = false;
  /** Reading from the client is paused (see the class's docs). */
  private readingPaused = false;
  private user = '';
  private database = '';
  private session: SharedSession | undefined;
  private readonly authenticationTimer: NodeJS.Timeout;

  constructor(
    private readonly raw: Socket,
    private readonly server: FrontendServer,
    ids: { processId: number; secretKey: number },
  ) {
    this.processId = ids.processId;
    this.secretKey = ids.secretKey;
    this.client = `${raw.remoteAddress ?? 'unknown'}:${raw.remotePort ?? 0}`;
    this.reader = new PacketReader(server.maxMessageBytes);
    this.socket = raw;
    raw.setNoDelay(true);
    raw.on('data', (chunk: Buffer) => this.receive(chunk));
    raw.on('error', () => undefined); // 'close' follows
    raw.on('close', () => this.closed());
    // PostgreSQL's authentication_timeout: a client that does not finish signing in is dropped.
    this.authenticationTimer = setTimeout(() => this.destroy(), server.authenticationTimeoutInMs);
    this.authenticationTimer.unref();
  }

  /** Whether the connection has signed in and talks to the session. */
  get ready(): boolean {
    return this.phase === 'ready';
  }

  /** Bytes held for this connection: messages not yet answered by the engine, answers its client has not read. */
  get bufferedBytes(): number {
    return this.reader.pendingBytes + this.runBytes + this.submittedBytes + this.unreadBytes;
  }

  /** Bytes of answers not yet handed to the network: queued, or in the socket's buffer. */
  private get unreadBytes(): number {
    return this.phase === 'closed' ? 0 : this.answerBytes + this.socket.writableLength;
  }

  /**
   * Whether the connection is held back, holding as much for its client as it may: it reads no further message, and
   * while its answers are unread the session runs none of its work (see the class's docs).
   */
  get heldBack(): boolean {
    return this.phase === 'ready' && this.mustWait();
  }

  /** The session delivers the backend's answer to one run. */
  deliver(bytes: Buffer): void {
    const run = this.submitted.shift();
    this.submittedBytes -= run?.bytes ?? 0;
    this.confirmParses(bytes, run?.parses ?? []);
    if (this.phase === 'closed') return;
    if (bytes.length) {
      this.answers.push(bytes);
      this.answerBytes += bytes.length;
      this.sendAnswers();
    }
    if (!this.unreadAnswers && this.tooMuchUnread()) {
      this.unreadAnswers = true;
      this.session?.pause(this);
    }
    this.flow();
  }

  /** Sends a fatal error and closes the connection. */
  terminate(error: ErrorFields): void {
    if (this.phase === 'closed') return;
    // The answers already given go first, as a backend's would (a COMMIT's answer included).
    for (const answer of this.answers) this.socket.write(answer);
    this.socket.end(backend.errorResponse(error));
    this.closed();
    // A client that keeps its end open would hold the socket: close it after the error had time to go out.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Closes the connection without a word (a CancelRequest's connection, a timed-out start-up). */
  destroy(): void {
    this.socket.destroy();
    this.closed();
  }

  /** This connection's pending statement is cancelled (a CancelRequest named it). */
  cancel(): void {
    if (this.phase === 'ready') this.session?.cancel(this);
  }

  private receive(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.reader.push(chunk);
    this.read();
  }

  /** Handles the messages received so far; a framing error ends the connection. */
  private read(): void {
    try {
      this.process();
    } catch (error) {
      if (!(error instanceof ProtocolViolationError)) throw error;
      this.terminate(postgresErrors.protocolViolation(error.message));
    }
  }

  /**
   * Writes the next slice of answers unless one is on its way. A write completes once its bytes are in the kernel's
   * buffer, which takes them as the client reads (in steps of a third of that buffer, Linux's wake-up threshold).
   */
  private sendAnswers(): void {
    if (this.sendingSlice || !this.answers.length || this.phase === 'closed') return;
    const parts: Buffer[] = [];
    let size = 0;
    while (this.answers.length && size < answerSliceBytes) {
      const head = this.answers[0]!;
      const take = Math.min(head.length, answerSliceBytes - size);
      parts.push(take === head.length ? head : head.subarray(0, take));
      if (take === head.length) this.answers.shift();
      else this.answers[0] = head.subarray(take);
      size += take;
    }
    this.answerBytes -= size;
    this.sendingSlice = true;
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), () => this.sliceSent());
  }

  /**
   * A slice of answers reached the network: the client reads. The session hears it (a transaction holder sending results
   * is not idle), the next slice goes, and the connection is released once less than the bound is left unread.
   */
  private sliceSent(): void {
    this.sendingSlice = false;
    if (this.phase === 'closed') return;
    this.session?.answersSent(this);
    this.sendAnswers();
    if (this.unreadAnswers && !this.tooMuchUnread()) {
      this.unreadAnswers = false;
      this.session?.resume(this);
      this.flow();
    }
  }

  /**
   * Whether the client has `maxBufferedBytes` of answers to read. Only while a slice is on its way: its completion is
   * what releases the connection, so a bound below a slice holds back until that slice has left.
   */
  private tooMuchUnread(): boolean {
    return this.sendingSlice && this.unreadBytes >= this.server.maxBufferedBytes;
  }

  /** Whether the connection holds as much for its client as it may (see the class's docs). */
  private mustWait(): boolean {
    return this.unreadAnswers || this.submittedBytes >= this.server.maxBufferedBytes;
  }

  /** Reads on if nothing holds the connection back: the messages already received first, then the socket. */
  private flow(): void {
    if (!this.readingPaused || this.phase !== 'ready' || this.mustWait()) return;
    this.readingPaused = false;
    this.read();
    if (!this.readingPaused) this.socket.resume();
  }

  private process(): void {
    for (;;) {
      if (this.phase === 'startup') {
        const packet = this.reader.nextStartupPacket();
        if (!packet || !this.startupPacket(packet)) return;
      } else if (this.phase === 'password') {
        const message = this.reader.nextAuthenticationMessage();
        if (!message) return;
        this.passwordMessage(message);
        return;
      } else if (this.phase === 'ready') {
        if (this.mustWait()) {
          this.readingPaused = true;
          this.socket.pause();
          return;
        }
        const message = this.reader.nextMessage();
        if (!message) return;
        this.frontendMessage(message);
      } else {
        return; // authenticating: the client waits for our answer; closed: nothing to do
      }
    }
  }

  /** Handles a packet of the start-up phase; returns whether to read on. */
  private startupPacket(packet: Buffer): boolean {
    const code = packet.readInt32BE(4);
    if (packet.length === 8 && code === startupCodes.sslRequest) {
      if (this.encrypted) throw new ProtocolViolationError('SSLRequest on an encrypted connection');
      // Bytes after the SSLRequest, before our answer, would be read as plaintext (CVE-2021-23214).
      if (this.reader.pendingBytes) throw new ProtocolViolationError('received unencrypted data after SSL request');
      this.raw.write('S');
      this.startTls();
      return false;
    }
    if (packet.length === 8 && code === startupCodes.gssEncRequest) {
      if (this.encrypted) throw new ProtocolViolationError('GSSENCRequest on an encrypted connection');
      this.raw.write('N'); // no GSSAPI encryption: the client goes on with SSLRequest or a plaintext start-up
      return true;
    }
    if (packet.length === 16 && code === startupCodes.cancelRequest) {
      // No answer, as in PostgreSQL; the request's own connection closes.
      this.server.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
      this.destroy();
      return false;
    }
    this.startupMessage(parseStartupMessage(packet));
    return this.phase === 'password';
  }

  private startTls(): void {
    this.raw.removeAllListeners('data');
    const secure = new TLSSocket(this.raw, { isServer: true, secureContext: this.server.secureContext });
    secure.on('data', (chunk: Buffer) => this.receive(chunk));
    secure.on('error', () => this.destroy());
    secure.on('close', () => this.closed());
    this.socket = secure;
    this.encrypted = true;
  }

  private startupMessage(startup: StartupMessage): void {
    if (startup.major !== 3) return this.terminate(postgresErrors.unsupportedProtocol(startup.major, startup.minor));
    const user = startup.parameters.get('user');
    if (!user) return this.terminate(postgresErrors.noUser());
    this.user = user;
    this.database = startup.parameters.get('database') || user;
    const attempt = { user, database: this.database, client: this.client };
    if (!this.encrypted) {
      this.server.login.refuseEarly(attempt, 'TLS is required (require_secure_transport): the start-up came in plaintext. Fix: PGSSLMODE=verify-full');
      return this.terminate(postgresErrors.noEncryption(this.raw.remoteAddress ?? 'unknown', user, this.database));
    }
    if (!this.server.admit(this)) {
      this.server.login.refuseEarly(attempt, 'too many connections (the server\'s connection limit is reached)');
      return this.terminate(postgresErrors.tooManyConnections());
    }
    this.settings = [...startup.parameters].filter(([name]) => !notSettings.has(name) && !name.startsWith('_pq_.'));
    this.settings.push(...commandLineSettings(startup.parameters.get('options') ?? ''));
    const unrecognized = [...startup.parameters.keys()].filter((name) => name.startsWith('_pq_.'));
    if (startup.minor > 0 || unrecognized.length) this.socket.write(backend.negotiateProtocolVersion(0, unrecognized));
    this.socket.write(backend.authenticationCleartextPassword());
    this.phase = 'password';
  }

  private passwordMessage(message: Buffer): void {
    if (message[0] !== 0x70 /* p */) {
      return this.terminate(postgresErrors.protocolViolation(`expected password response, got message type ${message[0]}`));
    }
    if (message[message.length - 1] !== 0 || message.indexOf(0, 5) !== message.length - 1) {
      return this.terminate(postgresErrors.protocolViolation('invalid password packet size'));
    }
    this.phase = 'authenticating';
    void this.signIn(message.subarray(5, message.length - 1).toString('utf8'));
  }

  private async signIn(password: string): Promise<void> {
    const result = await this.server.login.verify({ user: this.user, database: this.database, password, client: this.client });
    if (this.isClosed()) return;
    if (!result.ok) return this.terminate(result.error);
    this.role = result.principal.name;
    let served: ServedSession;
    try {
      served = await this.server.sessionFor(result.principal);
    } catch {
      return this.terminate(postgresErrors.notAcceptingConnections("The local PostgreSQL engine is not running; the local Azure's console says why."));
    }
    if (this.isClosed()) return;
    // PostgreSQL applies start-up settings after authentication; unknown or protected ones end the start-up.
    for (const [name] of this.settings) {
      const context = served.settings.get(name.toLowerCase());
      if (context === undefined && !name.includes('.')) return this.terminate(postgresErrors.unrecognizedParameter(name));
      if (context && !['user', 'backend'].includes(context)) return this.terminate(postgresErrors.parameterCannotBeChanged(name, context));
    }
    clearTimeout(this.authenticationTimer);
    this.session = served.session;
    this.session.attach(this);
    this.socket.write(
      Buffer.concat([
        backend.authenticationOk(),
        ...[...reportedParameters(served.parameters, this.role, this.settings)].map(([name, value]) => backend.parameterStatus(name, value)),
        backend.backendKeyData(this.processId, this.secretKey),
        backend.readyForQuery('I'),
      ]),
    );
    this.phase = 'ready';
    this.read();
  }

  private frontendMessage(message: Buffer): void {
    const type = String.fromCharCode(message[0]!);
    if (type === 'X') return this.destroy(); // Terminate
    if (!sessionMessages.has(type)) return this.terminate(postgresErrors.protocolViolation(`invalid frontend message type ${message[0]}`));
    const forwarded = refuseCopyFromStdin(message);
    // A stream of Bind/Execute without a Sync goes to the engine an Execute at a time, as PostgreSQL runs each message
    // as it comes: held whole until its Sync, it could grow without bound, and so could its answer.
    if (type === 'E' && this.runExecutes) this.submitRun();
    this.run.push(forwarded);
    this.runBytes += forwarded.length;
    if (type === 'E') this.runExecutes++;
    if (type === 'P') this.runParses.at(-1)!.push({ name: cstringAt(forwarded, 5), message: forwarded });
    if (type === 'C' && forwarded[5] === 0x53 /* S */) this.namedStatements.delete(cstringAt(forwarded, 6));
    if (type === 'S' || type === 'Q') this.runParses.push([]);
    // Other messages without a Sync (Parse after Parse) go in parts of the connection's bound, for the same reason.
    if (answeredAfter.has(type) || this.runBytes >= this.server.maxBufferedBytes) this.submitRun();
  }

  /** Hands the run cut so far to the session. */
  private submitRun(): void {
    const lastMessageAt = this.runBytes - this.run.at(-1)!.length;
    const run = Buffer.concat(this.run, this.runBytes);
    this.run = [];
    this.runBytes = 0;
    this.runExecutes = 0;
    this.submitted.push({ bytes: run.length, parses: this.runParses });
    this.submittedBytes += run.length;
    this.runParses = [[]];
    this.session!.submit(this, run, endsSegment.has(String.fromCharCode(run[lastMessageAt]!)));
  }

  /**
   * Keeps the named statements the engine parsed (ParseComplete, in order within a segment; after an error the
   * engine skips the rest of the segment until its Sync), so the session can re-make them at a hand-over.
   */
  private confirmParses(response: Buffer, segments: PendingParse[][]): void {
    let segment = 0;
    let parse = 0;
    let failed = false;
    for (const { type } of backendMessages(response)) {
      if (type === '1' && !failed) {
        const confirmed = segments[segment]?.[parse++];
        if (confirmed?.name) this.namedStatements.set(confirmed.name, confirmed.message);
      } else if (type === 'E') failed = true;
      else if (type === 'Z') {
        segment++;
        parse = 0;
        failed = false;
      }
    }
  }

  /** Whether the connection closed (re-read after an await: TypeScript narrows the field as if it could not change). */
  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  private closed(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.answers.length = 0;
    this.answerBytes = 0;
    clearTimeout(this.authenticationTimer);
    this.session?.detach(this);
    this.server.closed(this);
  }
}

/**
 * The ParameterStatus values a connection is told at start-up: the engine's, with the connection's role and the
 * start-up settings PostgreSQL reports (application_name, client_encoding, DateStyle, …).
 */
function reportedParameters(engine: ReadonlyMap<string, string>, role: string, settings: readonly (readonly [string, string])[]): Map<string, string> {
  const reported = new Map(engine);
  reported.set('session_authorization', role);
  reported.set('is_superuser', 'off');
  for (const [name, value] of settings) {
    const canonical = [...reported.keys()].find((key) => key.toLowerCase() === name.toLowerCase());
    if (canonical) reported.set(canonical, value);
  }
  return reported;
}

function cstringAt(message: Buffer, offset: number): string {
  return message.subarray(offset, message.indexOf(0, offset)).toString('utf8');
}

/** `-c name=value` and `--name=value` pairs of the `options` start-up parameter. */
function commandLineSettings(options: string): [string, string][] {
  const words = options.split(/\s+/).filter(Boolean);
  const settings: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] === '-c' ? words[++i] : words[i]?.startsWith('--') ? words[i]!.slice(2) : words[i]?.startsWith('-c') ? words[i]!.slice(2) : undefined;
    const match = word?.match(/^([^=]+)=(.*)$/);
    if (match) settings.push([match[1]!.replaceAll('-', '_'), match[2]!]);
  }
  return settings;
}

/**
 * PGlite's engine stops for good on `COPY … FROM STDIN`: such a statement (in a Query or a Parse) is replaced
 * by one that raises PostgreSQL's "feature not supported" error, so the client's transaction fails as it would
 * on any error. COPY takes no parameters, so a rewritten Parse keeps its Bind valid.
 */
function refuseCopyFromStdin(message: Buffer): Buffer {
  const sql = sqlText(message);
  if (sql === undefined || !isCopyFromStdin(sql)) return message;
  const statement = raiseStatement(postgresErrors.copyFromStdinUnsupported());
  if (message[0] === 0x51 /* Q */) return frontend.query(statement);
  const name = message.subarray(5, message.indexOf(0, 5));
  const body = Buffer.concat([name, Buffer.from([0]), Buffer.from(`${statement}\0`, 'utf8'), Buffer.from([0, 0])]);
  const parse = Buffer.alloc(5 + body.length);
  parse.write('P', 0, 'latin1');
  parse.writeInt32BE(4 + body.length, 1);
  body.copy(parse, 5);
  return parse;
}

/** Whether SQL text contains `COPY … FROM STDIN` outside comments, literals and quoted identifiers. */
export function isCopyFromStdin(sql: string): boolean {
  const code = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(\w*)\$[\s\S]*?\$\1\$/g, ' ');
  return /\bcopy\b[^;]*\bfrom\s+stdin\b/i.test(code);
}
