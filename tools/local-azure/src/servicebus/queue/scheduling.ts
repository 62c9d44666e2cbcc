// Scheduled messages of one queue: a message sent with a scheduled enqueue time (or by `scheduleMessages`) waits
// here, counted and peekable but not receivable, until its time comes; then it becomes active and its time to live
// starts. One timer per scheduled message; delays beyond setTimeout's range re-arm. Cancelling removes it.

import type { MessageQueue } from './message-queue.js';
import type { StoredMessage } from './stored-message.js';
import { maxTimerDelayInMs } from './timers.js';

/** The scheduled messages of one {@link MessageQueue}. */
export class QueueSchedule {
  constructor(private readonly queue: MessageQueue) {}

  /** Waits for the message's scheduled time, then makes it active. */
  arm(message: StoredMessage, now: number): void {
    clearTimeout(message.scheduleTimer);
    const delay = Math.max(0, message.scheduledAt! - now);
    message.scheduleTimer = this.queue.timer(() => {
      message.scheduleTimer = undefined;
      if (this.queue.messages.get(message.sequenceNumber) !== message || message.scheduledAt === undefined) return;
      const current = Date.now();
      if (message.scheduledAt > current) return this.arm(message, current);
      this.activate(message, current);
    }, Math.min(delay, maxTimerDelayInMs));
  }

  /** Stops waiting for the message (it leaves the queue). */
  disarm(message: StoredMessage): void {
    clearTimeout(message.scheduleTimer);
    message.scheduleTimer = undefined;
  }

  /** Stops every schedule timer (broker stop, entity deleted). */
  stop(): void {
    for (const message of this.queue.messages.values()) clearTimeout(message.scheduleTimer);
  }

  /** Cancels a scheduled message; returns whether there was one. */
  cancel(sequenceNumber: number): boolean {
    const message = this.queue.messages.get(sequenceNumber);
    if (!message || message.scheduledAt === undefined) return false;
    this.queue.remove(message);
    return true;
  }

  /** A scheduled message becomes active: its time to live starts now. */
  private activate(message: StoredMessage, now: number): void {
    const ttl = message.expiresAt - message.enqueuedAt;
    message.enqueuedAt = message.scheduledAt!;
    message.expiresAt = message.enqueuedAt + ttl;
    message.scheduledAt = undefined;
    this.queue.persist(message);
    this.queue.makeAvailable(message, now);
  }
}
