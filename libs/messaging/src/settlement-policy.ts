/**
 * The settlement policy: what happens to a received message, decided in one place.
 *
 * Rules:
 * 1. The handler resolved → **complete**.
 * 2. The message cannot be handled as sent — undecodable body, payload fails its schema, no handler for its
 *    subject, a request without `replyTo` or whose `replyTo` is not one of the service's reply queues — →
 *    **dead-letter at once**, reason and description naming the problem (retrying cannot help). A request
 *    whose caller can be answered also gets an error reply.
 * 3. The handler threw {@link DeadLetterError} → **dead-letter at once** with the handler's reason.
 * 4. A request handler failed any other way → the caller gets an error reply (`RpcException` with a stable
 *    code) and the request is **completed**: the reply is the outcome; the caller decides whether to retry.
 * 5. An event handler failed any other way → treated as **transient**: retried with exponential backoff and
 *    jitter until `maxAttempts` deliveries, then **dead-lettered** with the last error.
 * 6. A request was handled but its reply could not be sent (the broker went away, the send role is missing)
 *    → retried like rule 5. The reply is remembered before it is sent, so each redelivery re-sends it
 *    without running the handler again (a query's handler, `sideEffects: false`, runs again instead: nothing
 *    is remembered for it); past `maxAttempts` the request is dead-lettered with the send error.
 *    (The server first answers a permanent send failure, such as a reply too large, with a small `internal`
 *    error reply; rule 6 applies when that cannot be sent either.)
 *
 * How a retry works (rule 5): the message stays locked (the lock is renewed) for the backoff delay, then it
 * is **abandoned**, so Service Bus redelivers it with `deliveryCount + 1`. Re-scheduling a copy instead would
 * need a send to the topic (fanning the copy out to every subscription again) plus a complete that is not
 * atomic with it; abandoning keeps the message, its id and sequence number on its own subscription, and the
 * broker's delivery count is an attempt counter that survives crashes. A message whose consumer dies
 * mid-backoff comes back when its lock expires. `maxAttempts` should not exceed the entity's
 * MaxDeliveryCount (the broker dead-letters with `MaxDeliveryCountExceeded` past that).
 */
import { describe } from './error-description.js';
import { DeadLetterError } from './errors.js';

/** Tuning of the policy. */
export interface SettlementPolicyOptions {
  /** Deliveries of an event before a failing one is dead-lettered. **Default**: 5. */
  maxAttempts?: number;
  /** Delay before the first retry. **Default**: 500 ms. */
  initialBackoffInMs?: number;
  /** Upper bound of a retry delay. **Default**: 30000 ms. */
  maxBackoffInMs?: number;
  /** Random spread of each delay, as a fraction (0.2 = ±20 %). **Default**: 0.2. */
  jitter?: number;
}

export const settlementDefaults: Required<SettlementPolicyOptions> = {
  maxAttempts: 5,
  initialBackoffInMs: 500,
  maxBackoffInMs: 30_000,
  jitter: 0.2,
};

/** What happened to a message. */
export type HandlingOutcome =
  /** `duplicate`: the message was handled before (the idempotency guard answered; the handler did not run). */
  | { kind: 'handled'; duplicate?: true }
  | { kind: 'unhandleable'; reason: 'UndecodableBody' | 'SchemaValidationFailed' | 'NoHandler' | 'MissingReplyTo' | 'ReplyToNotAllowed'; description: string }
  | { kind: 'failed'; error: unknown; isRequest: boolean }
  | { kind: 'reply-not-sent'; error: unknown };

/** What to do with it. */
export type SettlementAction =
  | { action: 'complete' }
  | { action: 'dead-letter'; reason: string; description: string }
  | { action: 'retry'; delayInMs: number };

/** Applies the rules above; `deliveryCount` is the broker's count of earlier deliveries (0 the first time). */
export function settle(
  outcome: HandlingOutcome,
  deliveryCount: number,
  options: SettlementPolicyOptions = {},
  random: () => number = Math.random,
): SettlementAction {
  const policy = { ...settlementDefaults, ...options };
  switch (outcome.kind) {
    case 'handled':
      return { action: 'complete' };
    case 'unhandleable':
      return { action: 'dead-letter', reason: outcome.reason, description: outcome.description };
    case 'failed':
    case 'reply-not-sent': {
      if (outcome.kind === 'failed' && outcome.error instanceof DeadLetterError) {
        return { action: 'dead-letter', reason: outcome.error.reason, description: outcome.error.description };
      }
      if (outcome.kind === 'failed' && outcome.isRequest) return { action: 'complete' };
      const attempt = deliveryCount + 1;
      if (attempt >= policy.maxAttempts) {
        return { action: 'dead-letter', reason: 'MaxAttemptsExceeded', description: `failed ${attempt} times; last error: ${describe(outcome.error)}` };
      }
      return { action: 'retry', delayInMs: backoff(attempt, policy, random) };
    }
  }
}

/** Delay before retry number `attempt` (1-based): exponential, capped, with jitter. */
export function backoff(attempt: number, options: SettlementPolicyOptions = {}, random: () => number = Math.random): number {
  const policy = { ...settlementDefaults, ...options };
  const base = Math.min(policy.maxBackoffInMs, policy.initialBackoffInMs * 2 ** (attempt - 1));
  return Math.round(base * (1 - policy.jitter + 2 * policy.jitter * random()));
}
