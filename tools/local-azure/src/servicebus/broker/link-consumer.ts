// A receiver link as its queue sees it (queue/message-queue.ts `Consumer`): the credit the client granted, and each
// delivery encoded from the message's bytes as stored with only the header and the broker's annotations added per
// delivery (lock token in the delivery tag, locked-until, sequence number). management-operations.ts encodes peeked
// and deferred messages the same way.

import type { Delivery, Sender } from 'rhea';
import { amqpTypes, annotations, encodeMessage, lockTokenToDeliveryTag, messageStates, scanSections, sectionCodes, sectionsFrom } from '../amqp/amqp-message.js';
import type { BrokerError } from '../amqp/broker-error.js';
import type { MessageLock } from '../queue/locks.js';
import type { ReceiveMode } from '../queue/message-queue.js';
import type { SessionConsumer } from '../queue/sessions.js';
import type { StoredMessage } from '../queue/stored-message.js';
import { creditLimit, outgoingCapacity, transmittedCount } from '../amqp/rhea-internals.js';

const maxUint = 0xffff_ffff;

/**
 * Encodes a message as Service Bus delivers it: the sender's message plus the broker annotations the
 * SDK reads (sequence number, enqueued time, state, lock expiry) and the header's delivery count.
 *
 * Only the header and the annotations change, and they come first: when the message's bytes as sent are
 * at hand, those sections are encoded and the rest (properties, application properties, body, footer) is
 * copied as it arrived, so the body is never decoded nor encoded again.
 */
export function encodeDelivered(message: StoredMessage, lockedUntil: number | undefined, omitBody = false): Buffer {
  const amqp = message.amqp;
  const state = message.scheduledAt !== undefined ? messageStates.scheduled : message.deferred ? messageStates.deferred : messageStates.active;
  const brokerAnnotations: Record<string, unknown> = {
    ...amqp.message_annotations,
    [annotations.sequenceNumber]: amqpTypes.wrap_long(message.sequenceNumber),
    [annotations.enqueuedTime]: amqpTypes.wrap_timestamp(message.enqueuedAt),
    [annotations.messageState]: amqpTypes.wrap_int(state),
  };
  if (lockedUntil !== undefined) brokerAnnotations[annotations.lockedUntil] = amqpTypes.wrap_timestamp(lockedUntil);
  if (message.deadLetterSource !== undefined) brokerAnnotations[annotations.deadLetterSource] = message.deadLetterSource;
  // Service Bus reports the effective time to live (the entity default when the sender set none).
  const ttl = message.expiresAt - message.enqueuedAt;
  const headerTtl = amqp.ttl ?? (Number.isFinite(ttl) && ttl <= maxUint ? ttl : undefined);
  const header = {
    delivery_count: message.deliveryCount,
    ...(headerTtl !== undefined ? { ttl: headerTtl } : {}),
  };
  const sent = message.payload;
  // The bytes as sent lack an id the broker assigned: those messages are encoded whole.
  if (sent && message.assignedMessageId === undefined && !omitBody) {
    const head = encodeMessage({
      durable: amqp.durable,
      priority: amqp.priority,
      first_acquirer: amqp.first_acquirer,
      ...header,
      delivery_annotations: amqp.delivery_annotations,
      message_annotations: brokerAnnotations,
    });
    // rhea always writes a properties section: the head ends where it begins.
    const headLength = sectionsFrom(scanSections(head, sectionCodes.properties), sectionCodes.properties, head.length);
    const tailStart = sectionsFrom(scanSections(sent, sectionCodes.properties), sectionCodes.properties, sent.length);
    const delivered = Buffer.allocUnsafe(headLength + sent.length - tailStart);
    head.copy(delivered, 0, 0, headLength);
    sent.copy(delivered, headLength, tailStart);
    return delivered;
  }
  return encodeMessage({
    ...amqp,
    message_annotations: brokerAnnotations,
    ...header,
    ...(omitBody ? { body: undefined } : {}),
  });
}

/**
 * A receiver link seen as a consumer of its queue: tracks the credit the client granted (rhea counts
 * deliveries only when it transmits them, a tick later) and encodes deliveries with their lock token
 * in the delivery tag.
 */
export class LinkConsumer implements SessionConsumer {
  /** Deliveries handed to rhea since attach, in the link's delivery-count terms. */
  private sent: number;
  private tag = 0;

  constructor(
    readonly sender: Sender,
    readonly receiveMode: ReceiveMode,
    private readonly onDelivered: (delivery: Delivery, lock: MessageLock) => void,
    private readonly onSessionLost: (error: BrokerError) => void,
    /** While true, the link gets nothing whatever credit it granted (the `servicebus-credit stall` fault). */
    private readonly stalled: () => boolean = () => false,
  ) {
    this.sent = transmittedCount(sender);
  }

  credit(): number {
    if (!this.sender.is_open() || this.stalled()) return 0;
    return Math.min(creditLimit(this.sender) - this.sent, outgoingCapacity(this.sender));
  }

  deliver(message: StoredMessage, lock: MessageLock | undefined): void {
    const tag = lock ? lockTokenToDeliveryTag(lock.token) : Buffer.from(String(this.tag++));
    const delivery = this.sender.send(encodeDelivered(message, lock?.lockedUntil), tag, 0);
    this.sent++;
    if (lock) this.onDelivered(delivery, lock);
  }

  /** The remaining credit is used up by a drain. */
  drained(): void {
    this.sent = Math.max(this.sent, creditLimit(this.sender));
  }

  sessionLost(error: BrokerError): void {
    this.onSessionLost(error);
  }
}
