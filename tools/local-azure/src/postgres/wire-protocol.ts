// The PostgreSQL frontend/backend protocol 3.0, as far as the local server's front end needs it: framing,
// the start-up packets, and the backend messages it writes itself. Message formats:
// https://www.postgresql.org/docs/current/protocol-message-formats.html

/** Codes of the packets a client may send first (they carry no type byte). */
export const startupCodes = {
  /** Protocol 3.0 (major 3 in the high 16 bits). */
  protocol30: 196_608,
  sslRequest: 80_877_103,
  gssEncRequest: 80_877_104,
  cancelRequest: 80_877_102,
} as const;

/** Transaction status of a ReadyForQuery: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** Fields of an ErrorResponse or NoticeResponse. */
export interface ErrorFields {
  severity: 'FATAL' | 'ERROR';
  /** SQLSTATE. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** A packet or message the peer framed wrongly; the connection cannot continue. */
export class ProtocolViolationError extends Error {
  override readonly name = 'ProtocolViolationError';
}

const limits = {
  /** PostgreSQL refuses start-up packets longer than this (`MAX_STARTUP_PACKET_LENGTH`). */
  maxStartupPacketBytes: 10_000,
  /**
   * PostgreSQL reads a password message, before the client has signed in, only up to this long
   * (`PG_MAX_AUTH_TOKEN_LENGTH`); here it carries an access token, a few KB.
   */
  maxAuthenticationMessageBytes: 65_535,
};

/**
 * Accumulates bytes from a socket and cuts them into whole packets: start-up packets (`Int32 length`
 * first) before the session starts, typed messages (`Byte1 type, Int32 length`) after.
 */
export class PacketReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** Reads kept apart while a packet is still arriving, and their size. */
  private arriving: Buffer[] = [];
  private arrivingBytes = 0;
  /** Bytes the packet at the start of the buffer needs, once its length is known and it has not all arrived; else 0. */
  private needed = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes received but not yet returned as a packet. */
  get pendingBytes(): number {
    return this.buffer.length + this.arrivingBytes;
  }

  /**
   * Adds a read. A packet still arriving is joined once, when it is whole: joined at every read (a TLS record, 16 KiB
   * at most), a 64 MiB message cost some 128 GiB of copying.
   */
  push(chunk: Buffer): void {
    this.arriving.push(chunk);
    this.arrivingBytes += chunk.length;
    if (this.buffer.length + this.arrivingBytes < this.needed) return;
    this.join();
  }

  /** The next whole start-up packet (length included), or undefined until it has arrived. */
  nextStartupPacket(): Buffer | undefined {
    if (this.buffer.length < 4) return undefined;
    const length = this.buffer.readInt32BE(0);
    if (length < 8 || length > limits.maxStartupPacketBytes) throw new ProtocolViolationError('invalid length of startup packet');
    return this.take(length);
  }

  /** The next whole typed message (type byte and length included), or undefined until it has arrived. */
  nextMessage(): Buffer | undefined {
    return this.nextMessageUpTo(this.maxMessageBytes);
  }

  /**
   * The next whole message of the sign-in (a password message), refused as soon as its header announces more than
   * PostgreSQL takes before sign-in: an anonymous client could otherwise make the front end buffer the 64 MiB a
   * signed-in one may send, on every connection it opens.
   */
  nextAuthenticationMessage(): Buffer | undefined {
    return this.nextMessageUpTo(limits.maxAuthenticationMessageBytes);
  }

  private nextMessageUpTo(maxBytes: number): Buffer | undefined {
    if (this.buffer.length < 5) return undefined;
    const length = this.buffer.readInt32BE(1);
    if (length < 4 || length > maxBytes) throw new ProtocolViolationError(`invalid message length ${length}`);
    return this.take(length + 1);
  }

  /** Takes every byte received so far (a TLS handshake that follows an SSLRequest, for instance). */
  drain(): Buffer {
    this.join();
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  private join(): void {
    if (this.arriving.length) {
      const only = !this.buffer.length && this.arriving.length === 1 ? this.arriving[0]! : undefined;
      this.buffer = only ?? Buffer.concat([this.buffer, ...this.arriving], this.buffer.length + this.arrivingBytes);
    }
    this.arriving = [];
    this.arrivingBytes = 0;
    this.needed = 0;
  }

  private take(length: number): Buffer | undefined {
    if (this.buffer.length < length) {
      this.needed = length;
      return undefined;
    }
    const packet = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return packet;
  }
}

/** A parsed StartupMessage: protocol version and the `name\0value\0` pairs. */
export interface StartupMessage {
  major: number;
  minor: number;
  parameters: Map<string, string>;
}

/** Reads a StartupMessage (the whole packet, length included). */
export function parseStartupMessage(packet: Buffer): StartupMessage {
  const version = packet.readInt32BE(4);
  const parameters = new Map<string, string>();
  const strings = packet.subarray(8).toString('utf8').split('\0');
  // The list ends with an empty name; a missing terminator is a protocol violation.
  if (strings.length < 2 || strings.at(-1) !== '' || strings.at(-2) !== '') {
    throw new ProtocolViolationError('invalid startup packet layout: expected terminator as last byte');
  }
  for (let i = 0; i + 1 < strings.length - 1; i += 2) {
    if (!strings[i]) break;
    parameters.set(strings[i]!, strings[i + 1]!);
  }
  return { major: version >>> 16, minor: version & 0xffff, parameters };
}

function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function int32(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((value, i) => out.writeInt32BE(value, 4 * i));
  return out;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value}\0`, 'utf8');
}

/** Backend messages the front end writes itself. */
export const backend = {
  /** AuthenticationCleartextPassword (`R`, code 3): the password is an Entra access token. */
  authenticationCleartextPassword: (): Buffer => message('R', int32(3)),
  authenticationOk: (): Buffer => message('R', int32(0)),
  parameterStatus: (name: string, value: string): Buffer => message('S', Buffer.concat([cstring(name), cstring(value)])),
  backendKeyData: (processId: number, secretKey: number): Buffer => message('K', int32(processId, secretKey)),
  readyForQuery: (status: TransactionStatus): Buffer => message('Z', Buffer.from(status, 'latin1')),
  /** NegotiateProtocolVersion (`v`): the newest minor version served, and the `_pq_.` options not understood. */
  negotiateProtocolVersion: (minor: number, unrecognized: readonly string[]): Buffer =>
    message('v', Buffer.concat([int32(minor, unrecognized.length), ...unrecognized.map(cstring)])),
  errorResponse: (fields: ErrorFields): Buffer =>
    message(
      'E',
      Buffer.concat([
        Buffer.from('S'),
        cstring(fields.severity),
        Buffer.from('V'),
        cstring(fields.severity),
        Buffer.from('C'),
        cstring(fields.code),
        Buffer.from('M'),
        cstring(fields.message),
        ...(fields.detail ? [Buffer.from('D'), cstring(fields.detail)] : []),
        ...(fields.hint ? [Buffer.from('H'), cstring(fields.hint)] : []),
        Buffer.from([0]),
      ]),
    ),
};

/** Frontend messages the front end writes to the engine itself. */
export const frontend = {
  query: (sql: string): Buffer => message('Q', cstring(sql)),
  sync: (): Buffer => message('S', Buffer.alloc(0)),
  /** Parse of the unnamed statement (no parameter types), Bind of the unnamed portal (no parameters), Execute of it. */
  parseBindExecute: (sql: string): Buffer =>
    Buffer.concat([message('P', Buffer.concat([cstring(''), cstring(sql), Buffer.alloc(2)])), message('B', Buffer.concat([cstring(''), cstring(''), Buffer.alloc(6)])), message('E', Buffer.concat([cstring(''), int32(0)]))]),
  copyFail: (reason: string): Buffer => message('f', cstring(reason)),
  /** A StartupMessage (protocol 3.0) with the given parameters. */
  startup: (parameters: Record<string, string>): Buffer => {
    const body = Buffer.concat([int32(startupCodes.protocol30), ...Object.entries(parameters).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
    return Buffer.concat([int32(body.length + 4), body]);
  },
};

/** One backend message inside a response: its type and body (without type and length). */
export interface BackendMessage {
  type: string;
  body: Buffer;
}

/** Splits a run of backend messages. Trailing bytes that do not form a whole message are ignored. */
export function* backendMessages(bytes: Uint8Array): Generator<BackendMessage> {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset + 5 <= buffer.length; ) {
    const length = buffer.readInt32BE(offset + 1);
    if (length < 4 || offset + 1 + length > buffer.length) return;
    yield { type: String.fromCharCode(buffer[offset]!), body: buffer.subarray(offset + 5, offset + 1 + length) };
    offset += 1 + length;
  }
}

/** What a run of backend messages tells the scheduler. */
export interface ResponseSummary {
  /** Status of the last ReadyForQuery, if the run has one. */
  lastStatus?: TransactionStatus;
  /** ParameterStatus values, in order (later ones win). */
  parameters: Map<string, string>;
  /** The first ErrorResponse's fields. */
  error?: { code: string; message: string; fields: Map<string, string> };
}

/** Reads the ReadyForQuery status, the ParameterStatus values and the first error of a response. */
export function summarizeResponse(bytes: Uint8Array): ResponseSummary {
  const summary: ResponseSummary = { parameters: new Map() };
  for (const { type, body } of backendMessages(bytes)) {
    if (type === 'Z') summary.lastStatus = String.fromCharCode(body[0]!) as TransactionStatus;
    else if (type === 'S') {
      const [name, value] = body.toString('utf8').split('\0');
      summary.parameters.set(name!, value ?? '');
    } else if (type === 'E' && !summary.error) {
      const fields = errorFields(body);
      summary.error = { code: fields.get('C') ?? '', message: fields.get('M') ?? '', fields };
    }
  }
  return summary;
}

/** The values of a response's DataRow messages, as text (null for NULL), in order: what a simple Query returns. */
export function dataRows(bytes: Uint8Array): (string | null)[][] {
  const rows: (string | null)[][] = [];
  for (const { type, body } of backendMessages(bytes)) {
    if (type !== 'D') continue;
    const row: (string | null)[] = [];
    let offset = 2;
    for (let column = body.readInt16BE(0); column > 0; column--) {
      const length = body.readInt32BE(offset);
      offset += 4;
      row.push(length < 0 ? null : body.toString('utf8', offset, offset + length));
      offset += Math.max(0, length);
    }
    rows.push(row);
  }
  return rows;
}

/** The fields of an ErrorResponse or NoticeResponse body, by field type. */
export function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  for (let offset = 0; offset < body.length && body[offset] !== 0; ) {
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(body[offset]!), body.subarray(offset + 1, end).toString('utf8'));
    offset = end + 1;
  }
  return fields;
}

/** The SQL text of a Query (`Q`) or Parse (`P`) message; undefined for other messages. */
export function sqlText(message: Buffer): string | undefined {
  const type = String.fromCharCode(message[0]!);
  if (type === 'Q') return message.subarray(5, message.length - 1).toString('utf8');
  if (type === 'P') {
    const nameEnd = message.indexOf(0, 5);
    const queryEnd = nameEnd < 0 ? -1 : message.indexOf(0, nameEnd + 1);
    return queryEnd < 0 ? undefined : message.subarray(nameEnd + 1, queryEnd).toString('utf8');
  }
  return undefined;
}
