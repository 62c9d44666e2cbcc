import { encodeMessage, newLockToken, type AmqpMessage } from '../amqp/amqp-message.js';
import { BrokerError } from '../amqp/broker-error.js';
import type { MessageStore, PersistedMessage } from '../store/message-store.js';
import { SequenceHeap } from './sequence-heap.js';
import type { ReceivableProperties } from '../entities/topology.js';

/** How a receiver takes messages. */
export type ReceiveMode = 'peekLock' | 'receiveAndDelete';

/** A receiver link as the queue sees it. */
export interface Consumer {
  readonly receiveMode: ReceiveMode;
  /** How many more messages it can take right now (link credit not yet used). */
  credit(): number;
  /**
   * Hands a message over: locked (with `lock`) in peekLock; already removed from the queue in
   * receiveAndDelete. Must use one credit synchronously.
   */
  deliver(message: StoredMessage, lock: MessageLock | undefined): void;
}

/** A receiver link holding a session. */
export interface SessionConsumer extends Consumer {
  /** The broker took the session away (its lock expired): the link must detach with `error`. */
  sessionLost(error: BrokerError): void;
}

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

/** One session of a session-enabled queue or subscription. */
export class SessionQueue {
  readonly heap = new SequenceHeap<StoredMessage>();
  readonly locks = new Set<MessageLock>();
  owner: SessionConsumer | undefined;
  lockedUntil = 0;
  lockTimer: NodeJS.Timeout | undefined;
  state: Buffer | null = null;

  constructor(readonly id: string) {}
}

/** Where a queue keeps messages and reports what it does. */
export interface QueueContext {
  store: MessageStore;
  /** Moves a message to the entity's dead-letter queue (or where dead letters are forwarded). */
  deadLetter(queue: MessageQueue, message: StoredMessage, reason: string | undefined, description: string | undefined): void;
  /** Reports an unexpected failure in a timer (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/** Which part of an entity a queue is. */
export type QueueKind = 'active' | 'deadLetter' | 'transferDeadLetter';

interface SessionWaiter {
  consumer: SessionConsumer;
  resolve(session: SessionQueue): void;
  reject(error: BrokerError): void;
  timer: NodeJS.Timeout;
}

const maxTimerDelayInMs = 2 ** 31 - 1;

/** Service Bus's dead-letter reasons for broker-initiated dead-lettering. */
export const deadLetterReasons = {
  maxDeliveryCount: 'MaxDeliveryCountExceeded',
  expired: 'TTLExpiredException',
} as const;

/**
 * The messages of one receivable node — a queue, a subscription, or one of their dead-letter
 * sub-queues — with peekLock locks, deferral, scheduling, expiry, sessions, and the receivers (links)
 * it hands messages to. All state changes are written to the store; the broker acknowledges to
 * clients after the store commits.
 */
export class MessageQueue {
  readonly messages = new Map<number, StoredMessage>();
  /** Sum of the messages' encoded sizes (the entity size Service Bus reports and limits). */
  sizeInBytes = 0;
  readonly locks = new Map<string, MessageLock>();
  readonly sessions = new Map<string, SessionQueue>();
  private readonly available = new SequenceHeap<StoredMessage>();
  private readonly consumers: Consumer[] = [];
  private readonly waiters: SessionWaiter[] = [];
  private nextConsumer = 0;
  private pumping = false;
  private pumpQueued = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Number.POSITIVE_INFINITY;

  constructor(
    /** Address as clients write it: `orders`, `events/Subscriptions/vision/$DeadLetterQueue`. */
    readonly path: string,
    /** Key of its rows in the store. */
    readonly storeKey: string,
    readonly kind: QueueKind,
    readonly properties: ReceivableProperties,
    private readonly context: QueueContext,
  ) {}

  /** Only the active part of a session-enabled entity has sessions; its sub-queues do not. */
  get requiresSession(): boolean {
    return this.kind === 'active' && this.properties.requiresSession;
  }

  get lockDurationInMs(): number {
    return this.properties.lockDurationInMs;
  }

  // -------------------------------------------------------------------------------------------------
  // Adding and removing messages

  /** Adds a message (new, dead-lettered here, or loaded from the store). */
  add(message: StoredMessage, now: number, persist = true): void {
    message.queue = this;
    // The encoding is needed for the store anyway: computing the size here costs nothing more.
    if (!message.size) message.size = (message.payload ??= encodeMessage(message.amqp)).length;
    this.sizeInBytes += message.size;
    this.messages.set(message.sequenceNumber, message);
    if (persist) this.persist(message);
    if (message.scheduledAt !== undefined) this.armSchedule(message, now);
    else this.makeAvailable(message, now);
  }

  /** Removes a message for good (completed, received-and-deleted, expired, purged, moved). */
  remove(message: StoredMessage): void {
    if (this.messages.get(message.sequenceNumber) !== message) return;
    this.messages.delete(message.sequenceNumber);
    this.sizeInBytes -= message.size;
    if (message.lock) this.dropLock(message.lock);
    clearTimeout(message.scheduleTimer);
    message.scheduleTimer = undefined;
    this.context.store.deleteMessage(this.storeKey, message.sequenceNumber);
  }

  /** Writes the message's current state at the next commit. */
  persist(message: StoredMessage): void {
    const key = this.storeKey;
    this.context.store.putMessage(key, message.sequenceNumber, () => toRow(key, message));
  }

  /** Removes every message (operator purge); returns how many. */
  purge(): number {
    const count = this.messages.size;
    for (const message of [...this.messages.values()]) {
      if (message.lock) this.dropLock(message.lock);
      clearTimeout(message.scheduleTimer);
    }
    this.messages.clear();
    this.sizeInBytes = 0;
    this.available.clear();
    for (const session of this.sessions.values()) session.heap.clear();
    this.context.store.purgeQueue(this.storeKey);
    return count;
  }

  // -------------------------------------------------------------------------------------------------
  // Receivers

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  /** Removes a receiver; a session receiver gives its session back. Message locks stay until they expire. */
  removeConsumer(consumer: Consumer, now: number): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
    const waiter = this.waiters.findIndex((w) => w.consumer === consumer);
    if (waiter >= 0) {
      clearTimeout(this.waiters[waiter]!.timer);
      this.waiters.splice(waiter, 1);
    }
    for (const session of this.sessions.values()) {
      if (session.owner === consumer) this.releaseSession(session, now);
    }
  }

  /** Hands available messages to receivers with credit, round robin (later in this turn). */
  schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Hands available messages to receivers with credit now. */
  pump(now = Date.now()): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      if (this.requiresSession) {
        for (const session of this.sessions.values()) if (session.owner) this.pumpSession(session, now);
        return;
      }
      let withoutCredit = 0;
      while (this.consumers.length && withoutCredit < this.consumers.length) {
        const consumer = this.consumers[this.nextConsumer++ % this.consumers.length]!;
        if (consumer.credit() <= 0) {
          withoutCredit++;
          continue;
        }
        const message = this.nextAvailable(this.available, now);
        if (!message) break;
        withoutCredit = 0;
        this.hand(message, consumer, undefined, now);
      }
    } finally {
      this.pumping = false;
    }
  }

  private pumpSession(session: SessionQueue, now: number): void {
    const owner = session.owner;
    while (owner && session.owner === owner && owner.credit() > 0) {
      const message = this.nextAvailable(session.heap, now);
      if (!message) return;
      this.hand(message, owner, session, now);
    }
  }

  private hand(message: StoredMessage, consumer: Consumer, session: SessionQueue | undefined, now: number): void {
    if (consumer.receiveMode === 'receiveAndDelete') {
      this.remove(message);
      consumer.deliver(message, undefined);
      return;
    }
    consumer.deliver(message, this.lock(message, session, now));
  }

  /** Locks a message for a peekLock receiver (link delivery or receive-by-sequence-number). */
  lock(message: StoredMessage, session: SessionQueue | undefined, now: number): MessageLock {
    const lock: MessageLock = {
      token: newLockToken(),
      message,
      lockedUntil: session ? session.lockedUntil : now + this.lockDurationInMs,
      timer: undefined,
      session,
      released: false,
    };
    if (session) session.locks.add(lock);
    else lock.timer = this.timer(() => this.expireLock(lock), this.lockDurationInMs);
    message.lock = lock;
    this.locks.set(lock.token, lock);
    return lock;
  }

  private nextAvailable(heap: SequenceHeap<StoredMessage>, now: number): StoredMessage | undefined {
    for (;;) {
      const message = heap.pop();
      if (!message) return undefined;
      message.inHeap = false;
      if (!message.isAvailable) continue;
      if (message.expiresAt <= now) {
        this.expire(message);
        continue;
      }
      return message;
    }
  }

  /** Puts a message where receivers find it, if nothing (lock, deferral, schedule) holds it back. */
  private makeAvailable(message: StoredMessage, now: number): void {
    if (!message.isAvailable) {
      if (message.deferred && !message.lock) this.watchExpiry(message);
      return;
    }
    if (message.expiresAt <= now) {
      this.expire(message);
      return;
    }
    this.watchExpiry(message);
    if (message.inHeap) return;
    message.inHeap = true;
    if (this.requiresSession) {
      const session = this.session(message.sessionId ?? '');
      session.heap.push(message);
      if (session.owner) this.schedulePump();
      else this.offerSession(session, now);
    } else {
      this.available.push(message);
      if (this.consumers.length) this.schedulePump();
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Settlement

  /** The live lock with this token. @throws {BrokerError} `message-lock-lost` / `session-lock-lost` */
  lockFor(token: string): MessageLock {
    const lock = this.locks.get(token.toLowerCase());
    if (!lock) {
      throw new BrokerError(
        'message-lock-lost',
        `The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue. Reference: ${this.path}, lock token ${token}.`,
      );
    }
    return lock;
  }

  /** @throws {BrokerError} when the lock is no longer held. */
  checkLock(lock: MessageLock, now: number): void {
    if (lock.session) {
      if (lock.released || lock.session.owner === undefined) {
        throw new BrokerError(
          'session-lock-lost',
          `The session lock has expired on the MessageSession. Accept a new MessageSession. Session '${lock.session.id}' of ${this.path}.`,
        );
      }
      return;
    }
    if (lock.released || lock.lockedUntil < now || this.locks.get(lock.token) !== lock) {
      throw new BrokerError(
        'message-lock-lost',
        `The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue. Reference: ${this.path}, sequence number ${lock.message.sequenceNumber}.`,
      );
    }
  }

  complete(lock: MessageLock, now: number): void {
    this.checkLock(lock, now);
    this.remove(lock.message);
  }

  /** Gives the message back: delivery count +1, dead-lettered when it reaches MaxDeliveryCount. */
  abandon(lock: MessageLock, propertiesToModify: Record<string, unknown> | undefined, now: number): void {
    this.checkLock(lock, now);
    this.modify(lock.message, propertiesToModify);
    this.release(lock, true, now);
  }

  /** Releases without counting a delivery (AMQP `released`: the receiver did not look at it). */
  releaseUnprocessed(lock: MessageLock, now: number): void {
    this.checkLock(lock, now);
    this.release(lock, false, now);
  }

  /** Sets the message aside: only `receiveDeferredMessages` (by sequence number) gets it again. */
  defer(lock: MessageLock, propertiesToModify: Record<string, unknown> | undefined, now: number): void {
    this.checkLock(lock, now);
    const message = lock.message;
    this.modify(message, propertiesToModify);
    message.deferred = true;
    this.dropLock(lock);
    this.persist(message);
    this.makeAvailable(message, now);
  }

  deadLetter(
    lock: MessageLock,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify: Record<string, unknown> | undefined,
    now: number,
  ): void {
    this.checkLock(lock, now);
    if (this.kind !== 'active') {
      throw new BrokerError('not-allowed', `A message in ${this.path} is already dead-lettered; complete it to remove it, or resubmit it to its entity.`);
    }
    this.modify(lock.message, propertiesToModify);
    this.context.deadLetter(this, lock.message, reason, description);
  }

  /** Extends a message lock by the lock duration; returns the new expiry. */
  renewLock(token: string, now: number): number {
    const lock = this.lockFor(token);
    this.checkLock(lock, now);
    if (lock.session) return lock.session.lockedUntil;
    lock.lockedUntil = now + this.lockDurationInMs;
    clearTimeout(lock.timer);
    lock.timer = this.timer(() => this.expireLock(lock), this.lockDurationInMs);
    return lock.lockedUntil;
  }

  private expireLock(lock: MessageLock): void {
    if (lock.released) return;
    this.release(lock, true, Date.now());
  }

  private release(lock: MessageLock, countDelivery: boolean, now: number): void {
    const message = lock.message;
    this.dropLock(lock);
    if (countDelivery) message.deliveryCount++;
    if (countDelivery && this.kind === 'active' && message.deliveryCount >= this.properties.maxDeliveryCount) {
      this.context.deadLetter(
        this,
        message,
        deadLetterReasons.maxDeliveryCount,
        `Message could not be consumed after ${this.properties.maxDeliveryCount} delivery attempts.`,
      );
      return;
    }
    this.persist(message);
    this.makeAvailable(message, now);
  }

  private dropLock(lock: MessageLock): void {
    lock.released = true;
    clearTimeout(lock.timer);
    lock.timer = undefined;
    this.locks.delete(lock.token);
    lock.session?.locks.delete(lock);
    if (lock.message.lock === lock) lock.message.lock = undefined;
  }

  private modify(message: StoredMessage, propertiesToModify: Record<string, unknown> | undefined): void {
    if (!propertiesToModify || !Object.keys(propertiesToModify).length) return;
    message.amqp = { ...message.amqp, application_properties: { ...message.amqp.application_properties, ...propertiesToModify } };
    message.payload = encodeMessage(message.amqp);
    message.assignedMessageId = undefined;
    this.sizeInBytes += message.payload.length - message.size;
    message.size = message.payload.length;
  }

  // -------------------------------------------------------------------------------------------------
  // Scheduling and expiry

  private armSchedule(message: StoredMessage, now: number): void {
    clearTimeout(message.scheduleTimer);
    const delay = Math.max(0, message.scheduledAt! - now);
    message.scheduleTimer = this.timer(() => {
      message.scheduleTimer = undefined;
      if (this.messages.get(message.sequenceNumber) !== message || message.scheduledAt === undefined) return;
      const current = Date.now();
      if (message.scheduledAt > current) return this.armSchedule(message, current);
      this.activate(message, current);
    }, Math.min(delay, maxTimerDelayInMs));
  }

  /** A scheduled message becomes active: its time to live starts now. */
  private activate(message: StoredMessage, now: number): void {
    const ttl = message.expiresAt - message.enqueuedAt;
    message.enqueuedAt = message.scheduledAt!;
    message.expiresAt = message.enqueuedAt + ttl;
    message.scheduledAt = undefined;
    this.persist(message);
    this.makeAvailable(message, now);
  }

  /** Cancels a scheduled message; returns whether there was one. */
  cancelScheduled(sequenceNumber: number): boolean {
    const message = this.messages.get(sequenceNumber);
    if (!message || message.scheduledAt === undefined) return false;
    this.remove(message);
    return true;
  }

  private watchExpiry(message: StoredMessage): void {
    if (message.expiresAt >= this.expiryAt) return;
    this.expiryAt = message.expiresAt;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = this.timer(() => this.sweepExpired(), Math.min(Math.max(0, message.expiresAt - Date.now()), maxTimerDelayInMs));
  }

  /** Expires every unlocked message past its time to live and re-arms for the next one. */
  private sweepExpired(): void {
    this.expiryTimer = undefined;
    this.expiryAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const message of [...this.messages.values()]) {
      if (message.lock || message.scheduledAt !== undefined || !Number.isFinite(message.expiresAt)) continue;
      if (message.expiresAt <= now) this.expire(message);
      else next = Math.min(next, message.expiresAt);
    }
    if (Number.isFinite(next)) {
      this.expiryAt = next;
      this.expiryTimer = this.timer(() => this.sweepExpired(), Math.min(next - now, maxTimerDelayInMs));
    }
  }

  private expire(message: StoredMessage): void {
    if (this.kind === 'active' && this.properties.deadLetteringOnMessageExpiration) {
      this.context.deadLetter(this, message, deadLetterReasons.expired, 'The message expired and was dead lettered.');
    } else {
      this.remove(message);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Sessions

  /** The session with this id (created on first use). */
  session(id: string): SessionQueue {
    let session = this.sessions.get(id);
    if (!session) {
      session = new SessionQueue(id);
      this.sessions.set(id, session);
    }
    return session;
  }

  /** Locks a named session for `consumer`. @throws {BrokerError} `session-cannot-be-locked` */
  acceptSession(id: string, consumer: SessionConsumer, now: number): SessionQueue {
    const session = this.session(id);
    if (session.owner && session.owner !== consumer) {
      throw new BrokerError(
        'session-cannot-be-locked',
        `The requested session '${id}' cannot be accepted. It may be locked by another receiver. Entity: ${this.path}.`,
      );
    }
    this.lockSession(session, consumer, now);
    return session;
  }

  /**
   * Locks the next session that has messages for `consumer`, waiting up to `timeoutInMs` for one.
   * @throws {BrokerError} `timeout` when none became available in time.
   */
  acceptNextSession(consumer: SessionConsumer, timeoutInMs: number, now: number): Promise<SessionQueue> {
    const session = this.nextFreeSession(now);
    if (session) {
      this.lockSession(session, consumer, now);
      return Promise.resolve(session);
    }
    return new Promise<SessionQueue>((resolve, reject) => {
      const waiter: SessionWaiter = {
        consumer,
        resolve,
        reject,
        timer: this.timer(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(
            new BrokerError(
              'timeout',
              `The operation did not complete within the allocated time ${timeoutInMs} ms: no session of ${this.path} with messages became available.`,
            ),
          );
        }, timeoutInMs),
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * Expires every held session lock now, as if its lock duration had passed: each receiver is told (and detached
   * with `session-lock-lost`) and the session's unsettled messages go back to the queue.
   */
  expireSessionLocks(now: number): void {
    for (const session of this.sessions.values()) {
      const owner = session.owner;
      if (!owner) continue;
      this.releaseSession(session, now);
      owner.sessionLost(new BrokerError('session-lock-lost', `The session lock has expired on the MessageSession '${session.id}' of ${this.path}. Accept the session again.`));
    }
  }

  /** Extends the session lock; returns the new expiry. @throws {BrokerError} `session-lock-lost` */
  renewSessionLock(id: string, now: number): number {
    const session = this.lockedSession(id);
    session.lockedUntil = now + this.lockDurationInMs;
    for (const lock of session.locks) lock.lockedUntil = session.lockedUntil;
    this.armSessionTimer(session);
    return session.lockedUntil;
  }

  /** The session if some receiver holds its lock. @throws {BrokerError} `session-lock-lost` */
  lockedSession(id: string): SessionQueue {
    const session = this.sessions.get(id);
    if (!session?.owner) {
      throw new BrokerError(
        'session-lock-lost',
        `The session lock has expired on the MessageSession, or the session '${id}' of ${this.path} is not locked. Accept the session first.`,
      );
    }
    return session;
  }

  setSessionState(id: string, state: Buffer | null): void {
    const session = this.lockedSession(id);
    session.state = state;
    this.context.store.putSessionState(this.storeKey, id, state);
  }

  /** Ids of sessions with messages or state (`get-message-sessions`). */
  sessionIds(): string[] {
    return [...this.sessions.values()]
      .filter((session) => session.state !== null || [...this.messages.values()].some((m) => m.sessionId === session.id))
      .map((session) => session.id);
  }

  private lockSession(session: SessionQueue, consumer: SessionConsumer, now: number): void {
    session.owner = consumer;
    session.lockedUntil = now + this.lockDurationInMs;
    this.armSessionTimer(session);
    this.schedulePump();
  }

  private armSessionTimer(session: SessionQueue): void {
    clearTimeout(session.lockTimer);
    session.lockTimer = this.timer(
      () => {
        const owner = session.owner;
        if (!owner) return;
        this.releaseSession(session, Date.now());
        owner.sessionLost(
          new BrokerError('session-lock-lost', `The session lock has expired on the MessageSession '${session.id}' of ${this.path}. Accept the session again.`),
        );
      },
      Math.max(0, session.lockedUntil - Date.now()),
    );
  }

  /** Gives a session back: its unsettled messages return to the queue (delivery count +1). */
  private releaseSession(session: SessionQueue, now: number): void {
    session.owner = undefined;
    clearTimeout(session.lockTimer);
    session.lockTimer = undefined;
    for (const lock of [...session.locks]) this.release(lock, true, now);
    this.offerSession(session, now);
  }

  private nextFreeSession(now: number): SessionQueue | undefined {
    let best: SessionQueue | undefined;
    let bestHead = Number.POSITIVE_INFINITY;
    for (const session of this.sessions.values()) {
      if (session.owner) continue;
      const head = this.headOf(session, now);
      if (head !== undefined && head.sequenceNumber < bestHead) {
        best = session;
        bestHead = head.sequenceNumber;
      }
    }
    return best;
  }

  /** The first available message of a session, dropping stale heap entries. */
  private headOf(session: SessionQueue, now: number): StoredMessage | undefined {
    for (;;) {
      const head = session.heap.peek();
      if (!head) return undefined;
      if (head.isAvailable && head.expiresAt > now) return head;
      session.heap.pop();
      head.inHeap = false;
      if (head.isAvailable) this.expire(head);
    }
  }

  /** A session with messages and no owner goes to the receiver waiting longest for one. */
  private offerSession(session: SessionQueue, now: number): void {
    if (session.owner || !this.waiters.length || !this.headOf(session, now)) return;
    const waiter = this.waiters.shift()!;
    clearTimeout(waiter.timer);
    this.lockSession(session, waiter.consumer, now);
    waiter.resolve(session);
  }

  // -------------------------------------------------------------------------------------------------
  // Management and operator views

  /** Messages from a sequence number on, in order (active, deferred, scheduled and locked ones). */
  peek(fromSequenceNumber: number, count: number, sessionId?: string): StoredMessage[] {
    return [...this.messages.values()]
      .filter((m) => m.sequenceNumber >= fromSequenceNumber && (sessionId === undefined || m.sessionId === sessionId))
      .sort((a, b) => a.sequenceNumber - b.sequenceNumber)
      .slice(0, count);
  }

  /**
   * Takes deferred messages by sequence number: locked in peekLock, removed in receiveAndDelete.
   * @throws {BrokerError} `message-not-found` naming the first sequence number that is not deferred here.
   */
  receiveDeferred(sequenceNumbers: number[], mode: ReceiveMode, sessionId: string | undefined, now: number): { message: StoredMessage; lock?: MessageLock }[] {
    const messages = sequenceNumbers.map((sequenceNumber) => {
      const message = this.messages.get(sequenceNumber);
      if (!message || !message.deferred || message.lock || (sessionId !== undefined && message.sessionId !== sessionId)) {
        throw new BrokerError(
          'message-not-found',
          `The message with sequence number ${sequenceNumber} could not be found in ${this.path}, or it is not deferred${sessionId !== undefined ? ` in session '${sessionId}'` : ''}, or another receiver holds its lock.`,
        );
      }
      return message;
    });
    return messages.map((message) => {
      if (mode === 'receiveAndDelete') {
        this.remove(message);
        return { message };
      }
      const session = message.sessionId !== undefined && this.requiresSession ? this.sessions.get(message.sessionId) : undefined;
      return { message, lock: this.lock(message, session?.owner ? session : undefined, now) };
    });
  }

  /**
   * Deletes up to `count` messages enqueued before `before` (epoch ms), oldest first (`batch-delete-messages`):
   * available and deferred ones, of one session when `sessionId` is given; locked and scheduled messages stay.
   * @returns how many were deleted.
   */
  deleteMessages(count: number, before: number, sessionId: string | undefined): number {
    const doomed = [...this.messages.values()]
      .filter((m) => !m.lock && m.scheduledAt === undefined && m.enqueuedAt < before && (sessionId === undefined || m.sessionId === sessionId))
      .sort((a, b) => a.sequenceNumber - b.sequenceNumber)
      .slice(0, count);
    for (const message of doomed) this.remove(message);
    return doomed.length;
  }

  /** Counts for the operator view. */
  counts(): { active: number; scheduled: number; deferred: number; locked: number } {
    let active = 0;
    let scheduled = 0;
    let deferred = 0;
    let locked = 0;
    for (const message of this.messages.values()) {
      if (message.scheduledAt !== undefined) scheduled++;
      else if (message.deferred) deferred++;
      else active++;
      if (message.lock) locked++;
    }
    return { active, scheduled, deferred, locked };
  }

  /** Stops every timer (broker stop, entity deleted); receivers waiting for a session get `error`. */
  stop(error = new BrokerError('timeout', 'The local Service Bus is stopping.')): void {
    clearTimeout(this.expiryTimer);
    for (const message of this.messages.values()) clearTimeout(message.scheduleTimer);
    for (const lock of this.locks.values()) clearTimeout(lock.timer);
    for (const session of this.sessions.values()) clearTimeout(session.lockTimer);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  private timer(callback: () => void, delay: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      try {
        callback();
      } catch (error) {
        this.context.fail(error);
      }
    }, delay);
    timer.unref();
    return timer;
  }
}

function toRow(queue: string, message: StoredMessage): PersistedMessage {
  if (!message.payload) message.assignedMessageId = undefined;
  const payload = (message.payload ??= encodeMessage(message.amqp));
  const assignedMessageId = message.assignedMessageId ?? null;
  return {
    queue,
    sequenceNumber: message.sequenceNumber,
    payload,
    enqueuedAt: message.enqueuedAt,
    expiresAt: Number.isFinite(message.expiresAt) ? message.expiresAt : null,
    scheduledAt: message.scheduledAt ?? null,
    deferred: message.deferred,
    deliveryCount: message.deliveryCount,
    sessionId: message.sessionId ?? null,
    deadLetterSource: message.deadLetterSource ?? null,
    assignedMessageId,
  };
}
