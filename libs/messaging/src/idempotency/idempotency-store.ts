/** What the guard remembers about a handled message. */
export interface IdempotencyRecord {
  /** Epoch ms when it was handled. */
  handledAt: number;
  /** For requests: the reply body, re-sent as is if the request is delivered again. */
  reply?: unknown;
}

/**
 * Where the idempotency guard remembers handled messages, keyed by entity and message id. Plug a durable
 * store in when a redelivery after a crash must not repeat an effect that is not itself idempotent.
 */
export interface IdempotencyStore {
  get(key: string): Promise<IdempotencyRecord | undefined>;
  put(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void>;
  close?(): Promise<void> | void;
}
