// The peekLock locks of one queue, and the settlements that end them. A lock is taken when a message is delivered
// (over a link, or by receive-by-sequence-number), lasts the queue's lock duration (a session message's lasts as
// long as its session's lock), can be renewed, and ends with complete, abandon, defer, dead-letter or release —
// or when it expires, which counts as a failed delivery. A failed delivery past MaxDeliveryCount dead-letters the
// message. Lock tokens are what clients settle by, so the lookup by token lives here too.

import { encodeMessage, newLockToken } from '../amqp/amqp-message.js';
import { BrokerError } from '../amqp/broker-error.js';
import type { MessageQueue } from './message-queue.js';
import type { SessionQueue } from './sessions.js';
import type { StoredMessage } from './stored-message.js';

/** Service Bus's dead-letter reason when the broker dead-letters a message after too many deliveries. */
const maxDeliveryCountExceeded = 'MaxDeliveryCountExceeded';

/** The lock a peekLock receiver holds on a message. */
export interface MessageLock {
  readonly token: string;
  readonly message: StoredMessage;
  /** Epoch ms. */
  lockedUntil: number;
  timer: NodeJS.Timeout | undefined;
  /** The session whose lock covers this message (session messages have no lock of their own). */
  readonly session: SessionQueue | undefined;
  released: boolean;
}

/** The message locks of one {@link MessageQueue}, by token. */
export class QueueLocks {
  private readonly byToken = new Map<string, MessageLock>();

  constructor(private readonly queue: MessageQueue) {}

  /** Locks a message for a peekLock receiver (link delivery or receive-by-sequence-number). */
  lock(message: StoredMessage, session: SessionQueue | undefined, now: number): MessageLock {
    const queue = this.queue;
    const lock: MessageLock = {
      token: newLockToken(),
      message,
      lockedUntil: session ? session.lockedUntil : now + queue.lockDurationInMs,
      timer: undefined,
      session,
      released: false,
    };
    if (session) session.locks.add(lock);
    else lock.timer = queue.timer(() => this.expire(lock), queue.lockDurationInMs);
    message.lock = lock;
    this.byToken.set(lock.token, lock);
    return lock;
  }

  /** The live lock with this token. @throws {BrokerError} `message-lock-lost` / `session-lock-lost` */
  lockFor(token: string): MessageLock {
    const lock = this.byToken.get(token.toLowerCase());
    if (!lock) {
      throw new BrokerError(
        'message-lock-lost',
        `The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue. Reference: ${this.queue.path}, lock token ${token}.`,
      );
    }
    return lock;
  }

  /** @throws {BrokerError} when the lock is no longer held. */
  check(lock: MessageLock, now: number): void {
    if (lock.session) {
      if (lock.released || lock.session.owner === undefined) {
        throw new BrokerError(
          'session-lock-lost',
          `The session lock has expired on the MessageSession. Accept a new MessageSession. Session '${lock.session.id}' of ${this.queue.path}.`,
        );
      }
      return;
    }
    if (lock.released || lock.lockedUntil < now || this.byToken.get(lock.token) !== lock) {
      throw new BrokerError(
        'message-lock-lost',
        `The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue. Reference: ${this.queue.path}, sequence number ${lock.message.sequenceNumber}.`,
      );
    }
  }

  /** Extends a message lock by the lock duration; returns the new expiry. */
  renew(token: string, now: number): number {
    const lock = this.lockFor(token);
    this.check(lock, now);
    if (lock.session) return lock.session.lockedUntil;
    const queue = this.queue;
    lock.lockedUntil = now + queue.lockDurationInMs;
    clearTimeout(lock.timer);
    lock.timer = queue.timer(() => this.expire(lock), queue.lockDurationInMs);
    return lock.lockedUntil;
  }

  // -------------------------------------------------------------------------------------------------
  // Settlement

  complete(lock: MessageLock, now: number): void {
    this.check(lock, now);
    this.queue.remove(lock.message);
  }

  /** Gives the message back: delivery count +1, dead-lettered when it reaches MaxDeliveryCount. */
  abandon(lock: MessageLock, propertiesToModify: Record<string, unknown> | undefined, now: number): void {
    this.check(lock, now);
    this.modify(lock.message, propertiesToModify);
    this.release(lock, true, now);
  }

  /** Releases without counting a delivery (AMQP `released`: the receiver did not look at it). */
  releaseUnprocessed(lock: MessageLock, now: number): void {
    this.check(lock, now);
    this.release(lock, false, now);
  }

  /** Sets the message aside: only `receiveDeferredMessages` (by sequence number) gets it again. */
  defer(lock: MessageLock, propertiesToModify: Record<string, unknown> | undefined, now: number): void {
    this.check(lock, now);
    const message = lock.message;
    this.modify(message, propertiesToModify);
    message.deferred = true;
    this.drop(lock);
    this.queue.persist(message);
    this.queue.makeAvailable(message, now);
  }

  deadLetter(
    lock: MessageLock,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify: Record<string, unknown> | undefined,
    now: number,
  ): void {
    this.check(lock, now);
    const queue = this.queue;
    if (queue.kind !== 'active') {
      throw new BrokerError('not-allowed', `A message in ${queue.path} is already dead-lettered; complete it to remove it, or resubmit it to its entity.`);
    }
    this.modify(lock.message, propertiesToModify);
    queue.context.deadLetter(queue, lock.message, reason, description);
  }

  /**
   * Ends a lock and makes the message available again; a counted delivery that reaches MaxDeliveryCount
   * dead-letters it instead (active queues only).
   */
  release(lock: MessageLock, countDelivery: boolean, now: number): void {
    const queue = this.queue;
    const message = lock.message;
    this.drop(lock);
    if (countDelivery) message.deliveryCount++;
    if (countDelivery && queue.kind === 'active' && message.deliveryCount >= queue.properties.maxDeliveryCount) {
      queue.context.deadLetter(
        queue,
        message,
        maxDeliveryCountExceeded,
        `Message could not be consumed after ${queue.properties.maxDeliveryCount} delivery attempts.`,
      );
      return;
    }
    queue.persist(message);
    queue.makeAvailable(message, now);
  }

  /** Forgets a lock without touching its message's place (the message is removed, or set aside by the caller). */
  drop(lock: MessageLock): void {
    lock.released = true;
    clearTimeout(lock.timer);
    lock.timer = undefined;
    this.byToken.delete(lock.token);
    lock.session?.locks.delete(lock);
    if (lock.message.lock === lock) lock.message.lock = undefined;
  }

  /** Stops every lock timer (broker stop, entity deleted). */
  stop(): void {
    for (const lock of this.byToken.values()) clearTimeout(lock.timer);
  }

  private expire(lock: MessageLock): void {
    if (lock.released) return;
    this.release(lock, true, Date.now());
  }

  /** Applies a settlement's `propertiesToModify` to the message's application properties. */
  private modify(message: StoredMessage, propertiesToModify: Record<string, unknown> | undefined): void {
    if (!propertiesToModify || !Object.keys(propertiesToModify).length) return;
    message.amqp = { ...message.amqp, application_properties: { ...message.amqp.application_properties, ...propertiesToModify } };
    message.payload = encodeMessage(message.amqp);
    message.assignedMessageId = undefined;
    this.queue.sizeInBytes += message.payload.length - message.size;
    message.size = message.payload.length;
  }
}
