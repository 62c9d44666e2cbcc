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

/**
 * Unpacks a batch (format 0x80013700): an envelope whose body holds one data section per message, each
 * a complete encoded message. rhea decodes one section to a Buffer and several to a Buffer array.
 *
 * @throws {BrokerError} `decode-error` when the envelope is not such a batch.
 */
export function decodeBatch(payload: Buffer): IncomingMessage[] {
  const envelope = decodeMessage(payload);
  const body = envelope.body as DataSection | undefined;
  if (!body || body.typecode !== 0x75) {
    throw new BrokerError('decode-error', 'A batch message (format 0x80013700) must carry its messages as data sections.');
  }
  const sections = Array.isArray(body.content) ? body.content : [body.content];
  return sections.map((section) => {
    const bytes = Buffer.from(section);
    return { amqp: decodeMessage(bytes), payload: bytes };
  });
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
