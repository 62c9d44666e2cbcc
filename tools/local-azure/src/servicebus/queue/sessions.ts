// The sessions of a session-enabled queue or subscription. Each session has its own heap of available messages,
// at most one receiver holding its lock, the locks of the messages delivered under it, and its state. This unit
// owns who holds which session: accepting a named session, handing the next session with messages to the
// receiver waiting longest for one, renewing and expiring session locks, and giving a session back (its unsettled
// messages return to the queue). The queue's core hands messages to a session's owner.

import { BrokerError } from '../amqp/broker-error.js';
import type { MessageLock } from './locks.js';
import type { Consumer, MessageQueue } from './message-queue.js';
import { SequenceHeap } from './sequence-heap.js';
import type { StoredMessage } from './stored-message.js';

/** A receiver link holding a session. */
export interface SessionConsumer extends Consumer {
  /** The broker took the session away (its lock expired): the link must detach with `error`. */
  sessionLost(error: BrokerError): void;
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

interface SessionWaiter {
  consumer: SessionConsumer;
  resolve(session: SessionQueue): void;
  reject(error: BrokerError): void;
  timer: NodeJS.Timeout;
}

/** The sessions of one {@link MessageQueue}, by id, and the receivers waiting for one. */
export class QueueSessions {
  private readonly byId = new Map<string, SessionQueue>();
  private readonly waiters: SessionWaiter[] = [];

  constructor(private readonly queue: MessageQueue) {}

  /** Every session the queue has seen. */
  values(): IterableIterator<SessionQueue> {
    return this.byId.values();
  }

  /** The session with this id (created on first use). */
  session(id: string): SessionQueue {
    let session = this.byId.get(id);
    if (!session) {
      session = new SessionQueue(id);
      this.byId.set(id, session);
    }
    return session;
  }

  /** The session with this id, if the queue has seen it. */
  find(id: string): SessionQueue | undefined {
    return this.byId.get(id);
  }

  /** Locks a named session for `consumer`. @throws {BrokerError} `session-cannot-be-locked` */
  accept(id: string, consumer: SessionConsumer, now: number): SessionQueue {
    const session = this.session(id);
    if (session.owner && session.owner !== consumer) {
      throw new BrokerError(
        'session-cannot-be-locked',
        `The requested session '${id}' cannot be accepted. It may be locked by another receiver. Entity: ${this.queue.path}.`,
      );
    }
    this.lock(session, consumer, now);
    return session;
  }

  /**
   * Locks the next session that has messages for `consumer`, waiting up to `timeoutInMs` for one.
   * @throws {BrokerError} `timeout` when none became available in time.
   */
  acceptNext(consumer: SessionConsumer, timeoutInMs: number, now: number): Promise<SessionQueue> {
    const session = this.nextFree(now);
    if (session) {
      this.lock(session, consumer, now);
      return Promise.resolve(session);
    }
    return new Promise<SessionQueue>((resolve, reject) => {
      const waiter: SessionWaiter = {
        consumer,
        resolve,
        reject,
        timer: this.queue.timer(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(
            new BrokerError(
              'timeout',
              `The operation did not complete within the allocated time ${timeoutInMs} ms: no session of ${this.queue.path} with messages became available.`,
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
  expireLocks(now: number): void {
    for (const session of this.byId.values()) {
      const owner = session.owner;
      if (!owner) continue;
      this.release(session, now);
      owner.sessionLost(this.lockLost(session));
    }
  }

  /** Extends the session lock; returns the new expiry. @throws {BrokerError} `session-lock-lost` */
  renewLock(id: string, now: number): number {
    const session = this.locked(id);
    session.lockedUntil = now + this.queue.lockDurationInMs;
    for (const lock of session.locks) lock.lockedUntil = session.lockedUntil;
    this.armLockTimer(session);
    return session.lockedUntil;
  }

  /** The session if some receiver holds its lock. @throws {BrokerError} `session-lock-lost` */
  locked(id: string): SessionQueue {
    const session = this.byId.get(id);
    if (!session?.owner) {
      throw new BrokerError(
        'session-lock-lost',
        `The session lock has expired on the MessageSession, or the session '${id}' of ${this.queue.path} is not locked. Accept the session first.`,
      );
    }
    return session;
  }

  setState(id: string, state: Buffer | null): void {
    const session = this.locked(id);
    session.state = state;
    this.queue.context.store.putSessionState(this.queue.storeKey, id, state);
  }

  /** Ids of sessions with messages or state (`get-message-sessions`). */
  ids(): string[] {
    const messages = this.queue.messages;
    return [...this.byId.values()]
      .filter((session) => session.state !== null || [...messages.values()].some((m) => m.sessionId === session.id))
      .map((session) => session.id);
  }

  /** A receiver went away: it stops waiting, and the sessions it held are given back. */
  removeConsumer(consumer: Consumer, now: number): void {
    const waiter = this.waiters.findIndex((w) => w.consumer === consumer);
    if (waiter >= 0) {
      clearTimeout(this.waiters[waiter]!.timer);
      this.waiters.splice(waiter, 1);
    }
    for (const session of this.byId.values()) {
      if (session.owner === consumer) this.release(session, now);
    }
  }

  /** A session with messages and no owner goes to the receiver waiting longest for one. */
  offer(session: SessionQueue, now: number): void {
    if (session.owner || !this.waiters.length || !this.headOf(session, now)) return;
    const waiter = this.waiters.shift()!;
    clearTimeout(waiter.timer);
    this.lock(session, waiter.consumer, now);
    waiter.resolve(session);
  }

  /** Stops the session lock timers; receivers waiting for a session get `error`. */
  stop(error: BrokerError): void {
    for (const session of this.byId.values()) clearTimeout(session.lockTimer);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  private lock(session: SessionQueue, consumer: SessionConsumer, now: number): void {
    session.owner = consumer;
    session.lockedUntil = now + this.queue.lockDurationInMs;
    this.armLockTimer(session);
    this.queue.schedulePump();
  }

  private armLockTimer(session: SessionQueue): void {
    clearTimeout(session.lockTimer);
    session.lockTimer = this.queue.timer(
      () => {
        const owner = session.owner;
        if (!owner) return;
        this.release(session, Date.now());
        owner.sessionLost(this.lockLost(session));
      },
      Math.max(0, session.lockedUntil - Date.now()),
    );
  }

  private lockLost(session: SessionQueue): BrokerError {
    return new BrokerError('session-lock-lost', `The session lock has expired on the MessageSession '${session.id}' of ${this.queue.path}. Accept the session again.`);
  }

  /** Gives a session back: its unsettled messages return to the queue (delivery count +1). */
  private release(session: SessionQueue, now: number): void {
    session.owner = undefined;
    clearTimeout(session.lockTimer);
    session.lockTimer = undefined;
    for (const lock of [...session.locks]) this.queue.locks.release(lock, true, now);
    this.offer(session, now);
  }

  private nextFree(now: number): SessionQueue | undefined {
    let best: SessionQueue | undefined;
    let bestHead = Number.POSITIVE_INFINITY;
    for (const session of this.byId.values()) {
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
      if (head.isAvailable) this.queue.expiry.expire(head);
    }
  }
}
