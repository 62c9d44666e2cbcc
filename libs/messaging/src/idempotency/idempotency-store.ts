/** What the guard remembers about a handled message. */
export interface IdempotencyRecord {
  /** Epoch ms when it was handled. */
  handledAt: number;
  /** For requests: the reply body, re-sent as is if the request is delivered again. */
  reply?: unknown;
}

/** The answer of {@link IdempotencyStore.claim}. */
export type IdempotencyClaim =
  /** The caller holds the claim: it runs the handler, renews the lease while it runs, then completes or releases. */
  | { status: 'claimed' }
  /** The message was handled: answer from the record, do not run the handler. */
  | { status: 'done'; record: IdempotencyRecord }
  /** Another instance holds a live lease: it is handling the message right now. */
  | { status: 'running'; owner: string; leaseRemainingInMs: number };

/** Lease and retention of a claim. */
export interface ClaimOptions {
  /** How long the claim holds without a renewal (an instance that dies loses it after this long). */
  leaseInMs: number;
  /** How long the record of a handled message is kept. */
  ttlInMs: number;
}

/**
 * Where the idempotency guard records messages being handled and handled, keyed by entity and message id, shared by
 * every instance of a service. A message "in flight" is a row with a lease its instance renews, never an open
 * transaction.
 * Rules:
 * 1. `claim` succeeds when the key is unknown, its record is past its TTL, its lease expired (the instance holding it
 *    died), or the claim is the caller's own (a redelivery to the same instance after a failure).
 * 2. Otherwise it reports `done` with the record, or `running` with the holder and the time its lease has left.
 * 3. `renew` extends the caller's lease; false when the caller no longer holds the claim.
 * 4. `complete` records the outcome for `ttlInMs`, whoever held the claim; `release` drops the caller's claim so a
 *    retry can take it.
 */
export interface IdempotencyStore {
  claim(key: string, owner: string, options: ClaimOptions): Promise<IdempotencyClaim>;
  renew(key: string, owner: string, leaseInMs: number): Promise<boolean>;
  complete(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void>;
  release(key: string, owner: string): Promise<void>;
  close?(): Promise<void> | void;
}
