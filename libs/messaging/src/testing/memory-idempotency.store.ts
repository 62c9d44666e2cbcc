import type { IdempotencyRecord, IdempotencyStore } from './idempotency-store.js';

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /** Records kept; the oldest are dropped first. **Default**: 100000. */
  maxEntries?: number;
}

/**
 * The default store: per process, bounded, forgets on restart. It stops duplicates from a lost lock or a
 * publisher retry while the process lives; for effects that must not repeat after a crash, use
 * {@link SqliteIdempotencyStore} or make the effect itself idempotent (an upsert keyed by id).
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, { record: IdempotencyRecord; expiresAt: number }>();
  private readonly maxEntries: number;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  async get(key: string): Promise<IdempotencyRecord | undefined> {
    const entry = this.records.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt < Date.now()) {
      this.records.delete(key);
      return undefined;
    }
    return entry.record;
  }

  async put(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    this.records.delete(key);
    this.records.set(key, { record, expiresAt: Date.now() + ttlInMs });
    if (this.records.size > this.maxEntries) this.records.delete(this.records.keys().next().value!);
  }
}
