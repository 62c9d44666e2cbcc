// The messages of one receivable node — a queue, a subscription, or one of their dead-letter sub-queues — and the
// receivers it hands them to. The core owns the messages (add, remove, persist, size), their availability (the heap
// of available messages, and the pump that hands them to receivers with credit, round robin) and the operator and
// `$management` views (peek, deferred receive, batch delete, counts). The rest of a message's life is in one unit
// each, which the core consults and which call back into it: `locks` (peekLock locks and the settlements that end
// them), `sessions` (session ownership and waiting receivers), `schedule` (scheduled messages) and `expiry` (time to
// live). Every change is written to the store; the broker acknowledges to clients after the store commits.

import { encodeMessage } from '../amqp/amqp-message.js';
import { BrokerError } from '../amqp/broker-error.js';
import type { ReceivableProperties } from '../entities/topology.js';
import type { MessageStore, PersistedMessage } from '../store/message-store.js';
import { QueueExpiry } from './expiry.js';
import { QueueLocks, type MessageLock } from './locks.js';
import { QueueSchedule } from './scheduling.js';
import { SequenceHeap } from './sequence-heap.js';
import { QueueSessions, type SessionQueue } from './sessions.js';
import type { StoredMessage } from './stored-message.js';
import { startTimer } from './timers.js';

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

/**
 * The messages of one receivable node — a queue, a subscription, or one of their dead-letter
 * sub-queues — and the receivers (links) it hands them to; locks, sessions, scheduling and expiry
 * are its units.
 */
export class MessageQueue {
  readonly messages = new Map<number, StoredMessage>();
  /** Sum of the messages' encoded sizes (the entity size Service Bus reports and limits). */
  sizeInBytes = 0;
  /** PeekLock locks by token, and the settlements that end them. */
  readonly locks = new QueueLocks(this);
  /** Sessions by id, who holds each, and the receivers waiting for one. */
  readonly sessions = new QueueSessions(this);
  /** Messages waiting for their scheduled enqueue time. */
  readonly schedule = new QueueSchedule(this);
  /** Time to live. */
  readonly expiry = new QueueExpiry(this);
  private readonly available = new SequenceHeap<StoredMessage>();
  private readonly consumers: Consumer[] = [];
  private nextConsumer = 0;
  private pumping = false;
  private pumpQueued = false;
  /** Messages added since the last commit: available once it is done ({@link makeAvailableOnceStored}). */
  private uncommitted: StoredMessage[] = [];

  constructor(
    /** Address as clients write it: `orders`, `events/Subscriptions/vision/$DeadLetterQueue`. */
    readonly path: string,
    /** Key of its rows in the store. */
    readonly storeKey: string,
    readonly kind: QueueKind,
    readonly properties: ReceivableProperties,
    readonly context: QueueContext,
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
    if (message.scheduledAt !== undefined) this.schedule.arm(message, now);
    else if (persist) this.makeAvailableOnceStored(message);
    else this.makeAvailable(message, now);
  }

  /**
   * Makes a new message available to receivers once the store has committed it, as Service Bus delivers only
   * persisted messages: no receiver gets a message whose send is then rejected. One commit callback per queue
   * and commit. A message whose commit failed leaves the queue (its sender was told it was not stored).
   */
  private makeAvailableOnceStored(message: StoredMessage): void {
    if (this.uncommitted.push(message) > 1) return;
    this.context.store.afterCommit((error) => {
      const messages = this.uncommitted;
      this.uncommitted = [];
      const now = Date.now();
      for (const added of messages) {
        if (this.messages.get(added.sequenceNumber) !== added) continue;
        if (error) this.remove(added);
        else this.makeAvailable(added, now);
      }
    });
  }

  /** Removes a message for good (completed, received-and-deleted, expired, purged, moved). */
  remove(message: StoredMessage): void {
    if (this.messages.get(message.sequenceNumber) !== message) return;
    this.messages.delete(message.sequenceNumber);
    this.sizeInBytes -= message.size;
    if (message.lock) this.locks.drop(message.lock);
    this.schedule.disarm(message);
    this.context.store.deleteMessage(this.storeKey, message.sequenceNumber);
  }

  /** Writes the message's current state at the next commit. */
  persist(message: StoredMessage): void {
    const key = this.storeKey;
    this.context.store.putMessage(key, message.sequenceNumber, () => toRow(key, message));
  }

  /**
   * Deletes every message no receiver holds locked — available, deferred and scheduled ones — as Azure's purge (batch
   * delete) does: a locked message stays, and its receiver can still complete, abandon or dead-letter it.
   * @returns how many were deleted, and how many locked ones stayed.
   */
  purgeUnlocked(): { purged: number; lockedKept: number } {
    let purged = 0;
    let lockedKept = 0;
    // One by one through remove(), as deleteMessages does, so the store, the size and the schedule follow; the heaps
    // drop a removed message when it surfaces (it is no longer isAvailable).
    for (const message of [...this.messages.values()]) {
      if (message.lock) lockedKept++;
      else {
        this.remove(message);
        purged++;
      }
    }
    return { purged, lockedKept };
  }

  /** Removes every message, locked ones too (the entity is being deleted); returns how many. */
  purge(): number {
    const count = this.messages.size;
    for (const message of [...this.messages.values()]) {
      if (message.lock) this.locks.drop(message.lock);
      this.schedule.disarm(message);
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
    this.sessions.removeConsumer(consumer, now);
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
    consumer.deliver(message, this.locks.lock(message, session, now));
  }

  private nextAvailable(heap: SequenceHeap<StoredMessage>, now: number): StoredMessage | undefined {
    for (;;) {
      const message = heap.pop();
      if (!message) return undefined;
      message.inHeap = false;
      if (!message.isAvailable) continue;
      if (message.expiresAt <= now) {
        this.expiry.expire(message);
        continue;
      }
      return message;
    }
  }

  /** Puts a message where receivers find it, if nothing (lock, deferral, schedule) holds it back. */
  makeAvailable(message: StoredMessage, now: number): void {
    if (!message.isAvailable) {
      if (message.deferred && !message.lock) this.expiry.watch(message);
      return;
    }
    if (message.expiresAt <= now) {
      this.expiry.expire(message);
      return;
    }
    this.expiry.watch(message);
    if (message.inHeap) return;
    message.inHeap = true;
    if (this.requiresSession) {
      const session = this.sessions.session(message.sessionId ?? '');
      session.heap.push(message);
      if (session.owner) this.schedulePump();
      else this.sessions.offer(session, now);
    } else {
      this.available.push(message);
      if (this.consumers.length) this.schedulePump();
    }
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
      const session = message.sessionId !== undefined && this.requiresSession ? this.sessions.find(message.sessionId) : undefined;
      return { message, lock: this.locks.lock(message, session?.owner ? session : undefined, now) };
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
    this.expiry.stop();
    this.schedule.stop();
    this.locks.stop();
    this.sessions.stop(error);
  }

  /** An unref'd timer of this queue or one of its units; a failing callback is reported to the context. */
  timer(callback: () => void, delay: number): NodeJS.Timeout {
    return startTimer((error) => this.context.fail(error), callback, delay);
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
