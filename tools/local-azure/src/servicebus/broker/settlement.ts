// Settlement on links, both ways. The broker's deliveries in peekLock carry a lock; the client settles each with an
// outcome — accepted (complete), modified (abandon, or defer when undeliverable-here), rejected (dead-letter, with
// the `com.microsoft:dead-letter` condition), released — which this unit applies to the lock (queue/locks.ts) and
// answers with a settled disposition. The answer never echoes a dead-letter error: the SDK treats any error in it
// as a failure. Deliveries from clients (messages, requests) are settled here too, with accepted or rejected.

import type { Delivery } from 'rhea';
import { outcomes } from '../amqp/amqp-message.js';
import { toBrokerError, type BrokerError } from '../amqp/broker-error.js';
import { markRemoteSettled } from '../amqp/rhea-internals.js';
import type { MessageLock } from '../queue/locks.js';
import type { MessageQueue } from '../queue/message-queue.js';

/** The condition of a rejected outcome that dead-letters the message. */
const deadLetterCondition = 'com.microsoft:dead-letter';

/** An outcome as rhea decodes it from a disposition. */
interface Outcome {
  delivery_failed?: boolean;
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
  error?: { condition?: string; description?: string; info?: Record<string, unknown> };
}

/** The outcomes rhea raises events for. */
export type OutcomeKind = 'accepted' | 'rejected' | 'modified' | 'released';

/** The locks of the broker's unsettled peekLock deliveries. */
export class DeliverySettlement {
  private readonly locks = new WeakMap<Delivery, MessageLock>();

  constructor(private readonly fail: (error: unknown) => void) {}

  /** A message was delivered in peekLock under `lock`. */
  delivered(delivery: Delivery, lock: MessageLock): void {
    this.locks.set(delivery, lock);
  }

  /** A client settled a delivery of `queue` (peekLock): complete, abandon, defer or dead-letter it. */
  onOutcome(queue: MessageQueue, delivery: Delivery, outcome: OutcomeKind): void {
    const lock = this.locks.get(delivery);
    if (!lock) {
      if (!delivery.settled) settleOutgoing(delivery, acceptedOutcome());
      return;
    }
    this.locks.delete(delivery);
    const locks = queue.locks;
    const remote = (delivery.remote_state ?? {}) as Outcome;
    const now = Date.now();
    try {
      let reply: unknown = acceptedOutcome();
      switch (outcome) {
        case 'accepted':
          locks.complete(lock, now);
          break;
        case 'modified':
          if (remote.undeliverable_here) locks.defer(lock, remote.message_annotations, now);
          else locks.abandon(lock, remote.message_annotations, now);
          reply = outcomes.modified({ delivery_failed: remote.delivery_failed, undeliverable_here: remote.undeliverable_here }).described();
          break;
        case 'rejected': {
          const error = remote.error;
          if (error?.condition === deadLetterCondition) {
            const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error.info ?? {};
            locks.deadLetter(lock, optionalString(DeadLetterReason), optionalString(DeadLetterErrorDescription), properties, now);
          } else {
            locks.deadLetter(lock, error?.condition, error?.description, undefined, now);
          }
          // Never echo the dead-letter error: the SDK treats any error in the reply as a failure.
          break;
        }
        case 'released':
          locks.releaseUnprocessed(lock, now);
          reply = outcomes.released().described();
          break;
      }
      // Settlements are acknowledged at once (they commit at the end of this turn): a crash in between can
      // only deliver the message again, which at-least-once delivery allows. Sends wait for the commit.
      settleOutgoing(delivery, reply);
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.fail(error);
      settleOutgoing(delivery, rejectedOutcome(brokerError));
    }
  }
}

/** Settles a delivery the client sent (a message, a request). */
export function settle(delivery: Delivery, state: unknown): void {
  if (!delivery.settled) delivery.update(true, state);
}

/**
 * Settles a delivery the broker sent, answering the client's (unsettled) disposition. With receiver
 * settle mode `second` the client settles on receipt of this and sends nothing more, so the delivery
 * is done on both sides: rhea must be told, or it keeps every delivery of the link in its session's
 * 2048-slot outgoing buffer and the link stalls once that is full.
 */
function settleOutgoing(delivery: Delivery, state: unknown): void {
  if (delivery.settled) return;
  delivery.update(true, state);
  markRemoteSettled(delivery);
}

export function acceptedOutcome(): unknown {
  return outcomes.accepted().described();
}

export function rejectedOutcome(error: BrokerError): unknown {
  return outcomes.rejected({ error: error.toAmqp() }).described();
}

function optionalString(value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : String(value);
}
