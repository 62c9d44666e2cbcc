import { randomUUID } from 'node:crypto';
import rhea from 'rhea';
import { BrokerError } from './broker-error.js';

/**
 * An AMQP 1.0 message as rhea decodes it: header and properties fields flat, annotation and property
 * maps as plain objects, the body as rhea's section object (data / sequence) or a decoded value.
 */
export interface AmqpMessage {
  durable?: boolean;
  priority?: number;
  /** Header time-to-live in milliseconds. */
  ttl?: number;
  first_acquirer?: boolean;
  delivery_count?: number;
  delivery_annotations?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  message_id?: unknown;
  user_id?: Buffer;
  to?: string;
  subject?: string;
  reply_to?: string;
  correlation_id?: unknown;
  content_type?: string;
  content_encoding?: string;
  absolute_expiry_time?: Date;
  creation_time?: Date;
  group_id?: string;
  group_sequence?: number;
  reply_to_group_id?: string;
  application_properties?: Record<string, unknown>;
  body?: unknown;
  footer?: Record<string, unknown>;
}

/** A typed AMQP value (rhea's encoding wrapper). */
export type AmqpTyped = ReturnType<typeof rhea.types.wrap>;

/** rhea's codec, typed for the calls the broker makes. */
export const amqpTypes = rhea.types;

/** A delivery state ready for `delivery.update(settled, state)`. */
export type DeliveryState = { readonly described: true } | object;

interface Described {
  described(): DeliveryState;
}

/** Constructors of AMQP delivery outcomes (rhea's typings do not declare them). */
export const outcomes = rhea.message as unknown as {
  accepted(): Described;
  released(): Described;
  rejected(fields: { error: { condition: string; description: string } }): Described;
  modified(fields: { delivery_failed?: boolean; undeliverable_here?: boolean }): Described;
};

/** Message annotations Service Bus sets on delivered messages (the SDK reads these keys). */
export const annotations = {
  sequenceNumber: 'x-opt-sequence-number',
  enqueuedTime: 'x-opt-enqueued-time',
  lockedUntil: 'x-opt-locked-until',
  messageState: 'x-opt-message-state',
  scheduledEnqueueTime: 'x-opt-scheduled-enqueue-time',
  deadLetterSource: 'x-opt-deadletter-source',
  enqueueSequenceNumber: 'x-opt-enqueue-sequence-number',
  partitionKey: 'x-opt-partition-key',
} as const;

/** `x-opt-message-state` values. */
export const messageStates = { active: 0, deferred: 1, scheduled: 2 } as const;

/** The batch message format `@azure/service-bus` uses for `sendMessages([...])` and batches. */
export const batchMessageFormat = 0x80013700;

/** Encodes a message (all sections present in `message`). */
export function encodeMessage(message: AmqpMessage): Buffer {
  return rhea.message.encode(message);
}

/** Decodes one encoded AMQP message. @throws {BrokerError} `decode-error` */
export function decodeMessage(buffer: Buffer): AmqpMessage {
  try {
    return rhea.message.decode(buffer) as AmqpMessage;
  } catch (error) {
    throw new BrokerError('decode-error', `The message could not be decoded as AMQP 1.0: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Copies a message's data sections out of the buffer rhea decoded them from. rhea hands out slices of
 * the socket's read buffer: a small message kept in a queue would otherwise keep a whole 64 KiB chunk alive.
 */
export function ownBody(message: AmqpMessage): AmqpMessage {
  const body = message.body as DataSection | undefined;
  if (body && body.typecode === 0x75) {
    body.content = Array.isArray(body.content) ? body.content.map((part) => Buffer.from(part)) : Buffer.from(body.content);
  }
  return message;
}

interface DataSection {
  typecode: number;
  content: Buffer | Buffer[];
  multiple?: boolean;
}

/** A message as received: decoded, and encoded when its bytes are at hand (saves encoding it again). */
export interface IncomingMessage {
  amqp: AmqpMessage;
  payload?: Buffer;
}

/** Descriptor codes of the AMQP 1.0 message sections (amqp:header:list … amqp:footer:map). */
export const sectionCodes = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  sequence: 0x76,
  value: 0x77,
  footer: 0x78,
} as const;

const symbolicSectionCodes: Record<string, number> = {
  'amqp:header:list': sectionCodes.header,
  'amqp:delivery-annotations:map': sectionCodes.deliveryAnnotations,
  'amqp:message-annotations:map': sectionCodes.messageAnnotations,
  'amqp:properties:list': sectionCodes.properties,
  'amqp:application-properties:map': sectionCodes.applicationProperties,
  'amqp:data:binary': sectionCodes.data,
  'amqp:amqp-sequence:list': sectionCodes.sequence,
  'amqp:amqp-value:*': sectionCodes.value,
  'amqp:footer:map': sectionCodes.footer,
};

/** Where one section of an encoded message lies: `[start, end)`, the value after its descriptor at `valueStart`. */
export interface SectionSpan {
  code: number;
  start: number;
  valueStart: number;
  end: number;
}

class MalformedEncoding extends Error {}

/**
 * The offset just past the encoded value at `offset`, checking that it and (for lists and maps) every value
 * inside lie within `limit`. AMQP's type codes say their own width: the high nibble is the category (0x4–0x9
 * fixed 0–16 bytes, 0xa/0xb variable with a 1/4-byte size, 0xc/0xd compound, 0xe/0xf array), so a value can
 * be stepped over, and checked, without building it.
 */
function skipValue(buffer: Buffer, offset: number, limit: number): number {
  if (offset >= limit) throw new MalformedEncoding(`a value is cut off at byte ${offset}`);
  const code = buffer[offset]!;
  if (code === 0x00) return skipValue(buffer, skipValue(buffer, offset + 1, limit), limit);
  const at = offset + 1;
  let end: number;
  switch (code >> 4) {
    case 0x4:
      end = at;
      break;
    case 0x5:
      end = at + 1;
      break;
    case 0x6:
      end = at + 2;
      break;
    case 0x7:
      end = at + 4;
      break;
    case 0x8:
      end = at + 8;
      break;
    case 0x9:
      end = at + 16;
      break;
    case 0xa:
    case 0xe:
      end = at + 1 + (at < limit ? buffer[at]! : limit);
      break;
    case 0xc:
      end = at + 1 + (at < limit ? buffer[at]! : limit);
      if (end <= limit) checkElements(buffer, at + 2, end, at + 1 < end ? buffer[at + 1]! : 0);
      break;
    case 0xb:
    case 0xf:
      end = at + 4 + (at + 4 <= limit ? buffer.readUInt32BE(at) : limit);
      break;
    case 0xd:
      end = at + 4 + (at + 4 <= limit ? buffer.readUInt32BE(at) : limit);
      if (end <= limit) checkElements(buffer, at + 8, end, at + 8 <= end ? buffer.readUInt32BE(at + 4) : 0);
      break;
    default:
      throw new MalformedEncoding(`0x${code.toString(16)} at byte ${offset} is not an AMQP type code`);
  }
  if (end > limit) throw new MalformedEncoding(`the value at byte ${offset} runs past its end`);
  return end;
}

/** Checks that a list's or map's `count` values fill `[offset, end)` exactly. */
function checkElements(buffer: Buffer, offset: number, end: number, count: number): void {
  let at = offset;
  for (let i = 0; i < count; i++) at = skipValue(buffer, at, end);
  if (at !== end) throw new MalformedEncoding(`a list or map at byte ${offset} does not hold the ${count} values its header announces`);
}

/** The section code a descriptor stands for (numeric `0x00000000:000000xx` or symbolic). */
function sectionCode(buffer: Buffer, offset: number, end: number): number {
  const code = buffer[offset];
  if (code === 0x53) return buffer[offset + 1]!;
  if (code === 0x44) return 0;
  if (code === 0x80) return buffer.readUInt32BE(offset + 1) === 0 ? buffer.readUInt32BE(offset + 5) : -1;
  if (code === 0xa3) return symbolicSectionCodes[buffer.toString('latin1', offset + 2, end)] ?? -1;
  if (code === 0xb3) return symbolicSectionCodes[buffer.toString('latin1', offset + 5, end)] ?? -1;
  return -1;
}

/**
 * The sections of an encoded message, in order, with their spans: a walk over the bytes that checks every
 * size and nested value but builds nothing. With `stopAt`, the walk ends after the first section whose code
 * is at least that.
 *
 * @throws {BrokerError} `decode-error` when the bytes are not a sequence of well-formed message sections.
 */
export function scanSections(buffer: Buffer, stopAt = Number.POSITIVE_INFINITY): SectionSpan[] {
  const sections: SectionSpan[] = [];
  try {
    let offset = 0;
    while (offset < buffer.length && (sections.at(-1)?.code ?? 0) < stopAt) {
      if (buffer[offset] !== 0x00) throw new MalformedEncoding(`byte ${offset} does not start a described section`);
      const valueStart = skipValue(buffer, offset + 1, buffer.length);
      const code = sectionCode(buffer, offset + 1, valueStart);
      if (code < sectionCodes.header || code > sectionCodes.footer) throw new MalformedEncoding(`the section at byte ${offset} is not a message section`);
      const end = skipValue(buffer, valueStart, buffer.length);
      sections.push({ code, start: offset, valueStart, end });
      offset = end;
    }
  } catch (error) {
    const reason = error instanceof MalformedEncoding || error instanceof RangeError ? error.message : String(error);
    throw new BrokerError('decode-error', `The message could not be decoded as AMQP 1.0: ${reason}`, { cause: error });
  }
  return sections;
}

/** Where the sections from `code` on begin (the end of the message when there are none). */
export function sectionsFrom(sections: readonly SectionSpan[], code: number, length: number): number {
  for (const section of sections) if (section.code >= code) return section.start;
  return length;
}

/** The fields of the header and properties lists, in their AMQP order. */
const listFields: Record<number, readonly (keyof AmqpMessage)[]> = {
  [sectionCodes.header]: ['durable', 'priority', 'ttl', 'first_acquirer', 'delivery_count'],
  [sectionCodes.properties]: [
    'message_id',
    'user_id',
    'to',
    'subject',
    'reply_to',
    'correlation_id',
    'content_type',
    'content_encoding',
    'absolute_expiry_time',
    'creation_time',
    'group_id',
    'group_sequence',
    'reply_to_group_id',
  ],
};

const mapFields: Record<number, 'delivery_annotations' | 'message_annotations' | 'application_properties' | 'footer'> = {
  [sectionCodes.deliveryAnnotations]: 'delivery_annotations',
  [sectionCodes.messageAnnotations]: 'message_annotations',
  [sectionCodes.applicationProperties]: 'application_properties',
  [sectionCodes.footer]: 'footer',
};

/**
 * The element count and first element's offset of a list (`code8` 0xc0) or map (0xc1) at `at`, in its 1-byte
 * (`code8`) or 4-byte (`code8 + 0x10`) size form; undefined for any other type.
 */
function compoundAt(buffer: Buffer, at: number, code8: number): { count: number; offset: number } | undefined {
  const code = buffer[at];
  if (code === code8) return { count: buffer[at + 2]!, offset: at + 3 };
  if (code === code8 + 0x10) return { count: buffer.readUInt32BE(at + 5), offset: at + 9 };
  return undefined;
}

/** A map of plain keys and values as rhea decodes it to an object, or undefined when it holds anything else. */
function readPlainMap(buffer: Buffer, at: number, end: number): Record<string, unknown> | undefined {
  const compound = compoundAt(buffer, at, 0xc1);
  if (!compound) return undefined;
  let { offset } = compound;
  const count = compound.count;
  const entries: Record<string, unknown> = {};
  for (let i = 0; i + 1 < count; i += 2) {
    const key = readPlain(buffer, offset);
    if (key === notPlain) return undefined;
    offset = skipValue(buffer, offset, end);
    const value = readPlain(buffer, offset);
    if (value === notPlain) return undefined;
    offset = skipValue(buffer, offset, end);
    entries[key as string] = value;
  }
  return entries;
}

/** Longest string {@link readString} remembers: property names, subjects, content types; not ids or trace contexts. */
const maxRememberedLength = 32;
const maxRememberedStrings = 1024;
/** Short ASCII strings decoded before, by a hash of their bytes (a string is looked up only with its bytes compared). */
const rememberedStrings = new Map<number, string>();

/**
 * A UTF-8 string's text. Decoding it is a call into Node's C++ (~0.2 µs however short the string), and a batch's
 * messages repeat their property names and subjects: a short ASCII string seen before is found by a hash of its
 * bytes and checked byte by byte against the remembered text, without a call.
 */
function readString(buffer: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length > maxRememberedLength) return buffer.toString('utf8', start, end);
  let hash = length;
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + buffer[i]!) | 0;
  const remembered = rememberedStrings.get(hash);
  if (remembered !== undefined && remembered.length === length) {
    let same = true;
    for (let i = 0; i < length && same; i++) same = remembered.charCodeAt(i) === buffer[start + i];
    if (same) return remembered;
  }
  const text = buffer.toString('utf8', start, end);
  // Only ASCII (as many characters as bytes), so that comparing char codes with bytes is comparing the text.
  if (text.length === length) {
    if (rememberedStrings.size >= maxRememberedStrings) rememberedStrings.clear();
    rememberedStrings.set(hash, text);
  }
  return text;
}

/** Returned by {@link readPlain} for a value it leaves to rhea. */
const notPlain = Symbol('not a plain value');

/**
 * A value of the kinds messages usually hold (null, booleans, integers, doubles, strings, symbols,
 * timestamps), read as rhea reads it; anything else (binary, uuids, large longs, lists, maps, described
 * values) is left to rhea's decoder.
 */
function readPlain(buffer: Buffer, offset: number): unknown {
  switch (buffer[offset]) {
    case 0x40:
      return null;
    case 0x41:
      return true;
    case 0x42:
      return false;
    case 0x43:
      return 0;
    case 0x44:
      return 0;
    case 0x50:
    case 0x52:
    case 0x53:
      return buffer[offset + 1];
    case 0x54:
    case 0x55:
      return buffer.readInt8(offset + 1);
    case 0x70:
      return buffer.readUInt32BE(offset + 1);
    case 0x71:
      return buffer.readInt32BE(offset + 1);
    case 0x82:
      return buffer.readDoubleBE(offset + 1);
    case 0xa1:
    case 0xa3:
      return readString(buffer, offset + 2, offset + 2 + buffer[offset + 1]!);
    case 0xb1:
    case 0xb3:
      return readString(buffer, offset + 5, offset + 5 + buffer.readUInt32BE(offset + 1));
    case 0x81:
    case 0x83: {
      const high = buffer.readInt32BE(offset + 1);
      // rhea's range for a long it returns as a number (a Buffer beyond).
      if (high >= 2097153 || high <= -2097153) return notPlain;
      const value = high * 0x1_0000_0000 + buffer.readUInt32BE(offset + 5);
      return buffer[offset] === 0x83 ? new Date(value) : value;
    }
    default:
      return notPlain;
  }
}

/**
 * Decodes the header, an annotations map or the properties into `message` without rhea when they hold only
 * plain values (an empty map, lists of strings and numbers: what the SDKs send); returns false otherwise.
 */
function decodePlainSection(buffer: Buffer, section: SectionSpan, message: AmqpMessage): boolean {
  const at = section.valueStart;
  const code = buffer[at];
  const map = mapFields[section.code];
  if (map) {
    const entries = readPlainMap(buffer, at, section.end);
    if (entries) message[map] = entries;
    return !!entries;
  }
  const fields = listFields[section.code];
  if (!fields) return false;
  if (code === 0x45) return true;
  const compound = compoundAt(buffer, at, 0xc0);
  if (!compound) return false;
  let { offset } = compound;
  const count = compound.count;
  const values: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const value = readPlain(buffer, offset);
    if (value === notPlain) return false;
    values.push(value);
    offset = skipValue(buffer, offset, section.end);
  }
  for (let i = 0; i < count && i < fields.length; i++) {
    if (values[i] !== null && values[i] !== undefined) (message as Record<string, unknown>)[fields[i]!] = values[i];
  }
  return true;
}

/**
 * Decodes a message as rhea would, without rhea for what messages usually hold: maps and lists of plain
 * values ({@link readPlain}) and a body of one data section (its bytes stay a slice of `bytes`). Other
 * sections go through rhea's decoder. rhea builds a typed wrapper for every value before unwrapping it,
 * about 4 µs a message here; this is a fraction of that.
 *
 * @throws {BrokerError} `decode-error` when the bytes are not a well-formed message.
 */
export function decodeMessageFast(bytes: Buffer): AmqpMessage {
  const sections = scanSections(bytes);
  const message: AmqpMessage = {};
  let dataSections = 0;
  for (const section of sections) if (section.code === sectionCodes.data) dataSections++;
  for (const section of sections) {
    if (section.code === sectionCodes.data) {
      // Several data sections make one body, which rhea builds when it decodes them together.
      message.body ??=
        dataSections === 1 ? rhea.message.data_section(binaryValue(bytes, section)) : decodeMessage(bytes.subarray(section.start, sectionsEnd(sections, sectionCodes.data))).body;
      continue;
    }
    if (!decodePlainSection(bytes, section, message)) Object.assign(message, decodeMessage(bytes.subarray(section.start, section.end)));
  }
  return message;
}

/** The end of the run of sections with `code` that starts with the first of them. */
function sectionsEnd(sections: readonly SectionSpan[], code: number): number {
  let end = 0;
  for (const section of sections) {
    if (section.code === code) end = section.end;
    else if (end) break;
  }
  return end;
}

/**
 * Unpacks a batch (format 0x80013700): an envelope whose body holds one data section per message, each
 * a complete encoded message. Only the sections are located (the envelope's own fields are not needed);
 * each message is copied out of the frame and decoded with {@link decodeMessageFast}.
 *
 * @throws {BrokerError} `decode-error` when the envelope is not such a batch.
 */
export function decodeBatch(payload: Buffer): IncomingMessage[] {
  const sections = scanSections(payload);
  const bodies = sections.filter((section) => section.code >= sectionCodes.data && section.code <= sectionCodes.value);
  if (!bodies.length || bodies.some((section) => section.code !== sectionCodes.data)) {
    throw new BrokerError('decode-error', 'A batch message (format 0x80013700) must carry its messages as data sections.');
  }
  return bodies.map((section) => {
    // A copy of its own (not a slice of the frame, which would keep the whole batch alive), from Node's pool.
    const sent = binaryValue(payload, section);
    const bytes = Buffer.allocUnsafe(sent.length);
    bytes.set(sent);
    return { amqp: decodeMessageFast(bytes), payload: bytes };
  });
}

/** The bytes of a data section's binary value. @throws {BrokerError} `decode-error` */
function binaryValue(buffer: Buffer, section: SectionSpan): Buffer {
  const code = buffer[section.valueStart];
  if (code === 0xa0) return buffer.subarray(section.valueStart + 2, section.end);
  if (code === 0xb0) return buffer.subarray(section.valueStart + 5, section.end);
  throw new BrokerError('decode-error', `A data section must hold binary, not type 0x${code?.toString(16)}.`);
}

/** A new random lock token (RFC 4122 text form, lowercase). */
export function newLockToken(): string {
  return randomUUID();
}

/** RFC 4122 bytes of a GUID string. */
export function uuidToBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** GUID string of 16 RFC 4122 bytes. */
export function uuidToString(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The delivery tag carrying a lock token: .NET's `Guid.ToByteArray()` layout (first three groups
 * little-endian), which the SDK reorders back to RFC 4122 before printing the token.
 */
export function lockTokenToDeliveryTag(lockToken: string): Buffer {
  const bytes = uuidToBytes(lockToken);
  return Buffer.concat([
    Buffer.from(bytes.subarray(0, 4)).reverse(),
    Buffer.from(bytes.subarray(4, 6)).reverse(),
    Buffer.from(bytes.subarray(6, 8)).reverse(),
    bytes.subarray(8),
  ]);
}

const ticksAtUnixEpoch = 621_355_968_000_000_000n;

/** A time as .NET ticks in an 8-byte big-endian long (`com.microsoft:locked-until-utc`). */
export function dotNetTicks(epochMs: number): AmqpTyped {
  const buffer = Buffer.alloc(8);
  buffer.writeBigInt64BE(BigInt(Math.round(epochMs)) * 10_000n + ticksAtUnixEpoch);
  return amqpTypes.wrap_long(buffer);
}

/** A message id as text (duplicate detection, operator output). */
export function messageIdText(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return id.length === 16 ? uuidToString(id) : id.toString('hex');
  return String(id);
}

/** A sequence number from an AMQP long (number, or 8-byte big-endian Buffer for large values). */
export function longToNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  return undefined;
}
