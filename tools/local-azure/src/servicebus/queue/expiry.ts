// Time to live of one queue's messages. One timer per queue, armed for the earliest expiry among the messages that
// can expire (not locked, not scheduled); when it fires, a sweep expires every message past its time and re-arms
// for the next. Receivers also meet expired messages first-hand (the core asks `expire` when one surfaces). An
// expired message is dead-lettered when the entity says so (active queues only), else removed.

import type { MessageQueue } from './message-queue.js';
import type { StoredMessage } from './stored-message.js';
import { maxTimerDelayInMs } from './timers.js';

/** Service Bus's dead-letter reason when the broker dead-letters an expired message. */
const ttlExpired = 'TTLExpiredException';

/** The expiry timer of one {@link MessageQueue}. */
export class QueueExpiry {
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(private readonly queue: MessageQueue) {}

  /** Makes sure the timer fires by the message's expiry. */
  watch(message: StoredMessage): void {
    if (message.expiresAt >= this.armedFor) return;
    this.armedFor = message.expiresAt;
    clearTimeout(this.timer);
    this.timer = this.queue.timer(() => this.sweep(), Math.min(Math.max(0, message.expiresAt - Date.now()), maxTimerDelayInMs));
  }

  /** Dead-letters the message (when the entity dead-letters on expiration) or removes it. */
  expire(message: StoredMessage): void {
    const queue = this.queue;
    if (queue.kind === 'active' && queue.properties.deadLetteringOnMessageExpiration) {
      queue.context.deadLetter(queue, message, ttlExpired, 'The message expired and was dead lettered.');
    } else {
      queue.remove(message);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Expires every unlocked message past its time to live and re-arms for the next one. */
  private sweep(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const message of [...this.queue.messages.values()]) {
      if (message.lock || message.scheduledAt !== undefined || !Number.isFinite(message.expiresAt)) continue;
      if (message.expiresAt <= now) this.expire(message);
      else next = Math.min(next, message.expiresAt);
    }
    if (Number.isFinite(next)) {
      this.armedFor = next;
      this.timer = this.queue.timer(() => this.sweep(), Math.min(next - now, maxTimerDelayInMs));
    }
  }
}
