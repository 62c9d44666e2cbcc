import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { DatabasePrincipal } from '../data-plane.js';
import type { EntraLogin } from './entra-login.js';
import { postgresErrors, raiseStatement } from './postgres-errors.js';
import type { SessionClient, SharedSession } from './shared-session.js';
import {
  backend,
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
  readonly authenticationTimeoutInMs: number;
  /** Counts the connection against the connection limit; false when the limit is reached. */
  admit(connection: FrontendConnection): boolean;
  /** Creates the principal's role if the engine does not have it yet; resolves with the session to attach to. */
  sessionFor(principal: DatabasePrincipal): Promise<SharedSession>;
  /** ParameterStatus values of the engine (server_version, TimeZone, …). */
  parameters(): ReadonlyMap<string, string>;
  /** A CancelRequest arrived for this process id and secret key. */
  cancel(processId: number, secretKey: number): void;
  /** The connection closed. */
  closed(connection: FrontendConnection): void;
}

type Phase = 'startup' | 'password' | 'authenticating' | 'ready' | 'closed';

/** Messages after which the backend answers: the end of a run handed to the session. */
const answeredAfter = new Set(['Q', 'S', 'H', 'F', 'c', 'f']);
/** Start-up parameters that are not run-time settings. */
const notSettings = new Set(['user', 'database', 'options', 'replication']);

/**
 * One client connection to the local PostgreSQL: the start-up negotiation (SSLRequest → TLS with the local
 * CA's server certificate, GSSENCRequest → refused, CancelRequest), Entra authentication with a cleartext
 * password request, then the relay of the client's messages to the shared session, cut into runs that end
 * where the backend answers.
 */
export class FrontendConnection implements SessionClient {
  readonly processId: number;
  readonly secretKey: number;
  /** Address and port of the client. */
  readonly client: string;
  role = '';
  settings: (readonly [string, string])[] = [];
  readonly namedStatements = new Map<string, Buffer>();
  private phase: Phase = 'startup';
  private socket: Socket;
  private encrypted = false;
  private readonly reader: PacketReader;
  private run: Buffer[] = [];
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

  /** The session delivers the backend's answer. */
  deliver(bytes: Buffer): void {
    if (this.phase !== 'closed' && bytes.length) this.socket.write(bytes);
  }

  /** Sends a fatal error and closes the connection. */
  terminate(error: ErrorFields): void {
    if (this.phase === 'closed') return;
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
    try {
      this.reader.push(chunk);
      this.process();
    } catch (error) {
      if (!(error instanceof ProtocolViolationError)) throw error;
      this.terminate(postgresErrors.protocolViolation(error.message));
    }
  }

  private process(): void {
    for (;;) {
      if (this.phase === 'startup') {
        const packet = this.reader.nextStartupPacket();
        if (!packet || !this.startupPacket(packet)) return;
      } else if (this.phase === 'password') {
        const message = this.reader.nextMessage();
        if (!message) return;
        this.passwordMessage(message);
        return;
      } else if (this.phase === 'ready') {
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
    try {
      this.session = await this.server.sessionFor(result.principal);
      if (this.isClosed()) return;
      const setup = await this.session.attach(this);
      if (this.isClosed()) return;
      clearTimeout(this.authenticationTimer);
      const parameters = new Map([...this.server.parameters(), ...setup.parameters]);
      this.socket.write(
        Buffer.concat([
          backend.authenticationOk(),
          ...[...parameters].map(([name, value]) => backend.parameterStatus(name, value)),
          backend.backendKeyData(this.processId, this.secretKey),
          backend.readyForQuery('I'),
        ]),
      );
      this.phase = 'ready';
      this.process();
    } catch (error) {
      this.terminate(isErrorFields(error) ? error : postgresErrors.notAcceptingConnections("The local PostgreSQL engine is not running; the local Azure's console says why."));
    }
  }

  private frontendMessage(message: Buffer): void {
    const type = String.fromCharCode(message[0]!);
    if (type === 'X') return this.destroy(); // Terminate
    const forwarded = refuseCopyFromStdin(message);
    this.trackNamedStatement(type, forwarded);
    this.run.push(forwarded);
    if (!answeredAfter.has(type)) return;
    const run = Buffer.concat(this.run);
    this.run = [];
    this.session!.submit(this, run);
  }

  /**
   * Remembers named prepared statements (Parse with a name; Close of a statement forgets it), so that the
   * session can re-make them when it comes back to this connection after another one had it.
   */
  private trackNamedStatement(type: string, message: Buffer): void {
    if (type !== 'P' && type !== 'C') return;
    if (type === 'C' && message[5] !== 0x53 /* S */) return;
    const nameStart = type === 'P' ? 5 : 6;
    const name = message.subarray(nameStart, message.indexOf(0, nameStart)).toString('utf8');
    if (!name) return;
    if (type === 'P') this.namedStatements.set(name, message);
    else this.namedStatements.delete(name);
  }

  /** Whether the connection closed (re-read after an await: TypeScript narrows the field as if it could not change). */
  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  private closed(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.authenticationTimer);
    this.session?.detach(this);
    this.server.closed(this);
  }
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

function isErrorFields(value: unknown): value is ErrorFields {
  return typeof value === 'object' && value !== null && 'severity' in value && 'code' in value && 'message' in value;
}
