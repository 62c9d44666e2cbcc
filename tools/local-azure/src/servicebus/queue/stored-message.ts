// A message as a queue holds it: the bytes as sent, the broker's own fields (sequence number, enqueue and expiry
// times, schedule, deferral, delivery count, dead-letter source), the lock a receiver holds on it, and the queue it
// is in. It is a record the queue and its units (locks, sessions, scheduling, expiry) change; it decides nothing
// itself but whether a receiver may get it now.

import type { AmqpMessage } from '../amqp/amqp-message.js';
import type { MessageLock } from './locks.js';
import type { MessageQueue } from './message-queue.js';

/** A message in a queue, subscription or sub-queue. */
export class StoredMessage {
  lock: MessageLock | undefined;
  /**
   * The message's bytes: the encoding of `amqp`, or the bytes as sent when the only difference is
   * `assignedMessageId`. Written to the store as they are, and copied into deliveries (only the header and
   * annotations are encoded per delivery). Replaced whenever `amqp` changes.
   */
  payload: Buffer | undefined;
  /** The message id the broker assigned (the sender set none); kept apart so the bytes as sent can be stored. */
  assignedMessageId: string | undefined;
  /** Whether the message is in its queue's (or session's) heap of available messages. */
  inHeap = false;
  /** Encoded size in bytes (counted in its queue's size; set when the queue takes it). */
  size = 0;
  scheduleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly sequenceNumber: number,
    /** The message as sent, without broker annotations (treated as immutable: changes replace it). */
    public amqp: AmqpMessage,
    public enqueuedAt: number,
    /** Epoch ms; `Infinity` when it never expires. */
    public expiresAt: number,
    /** Epoch ms while scheduled. */
    public scheduledAt: number | undefined,
    public deferred: boolean,
    /** Failed delivery attempts so far (the header's delivery-count). */
    public deliveryCount: number,
    readonly sessionId: string | undefined,
    public deadLetterSource: string | undefined,
    public queue: MessageQueue,
  ) {}

  /** Whether a receiver may get it now (ignoring expiry). */
  get isAvailable(): boolean {
    return !this.lock && !this.deferred && this.scheduledAt === undefined && this.queue.messages.get(this.sequenceNumber) === this;
  }
}
