import type { ClaimOptions, IdempotencyClaim, IdempotencyRecord, IdempotencyStore } from '../idempotency/idempotency-store.js';

interface Entry {
  state: 'running' | 'done';
  owner?: string;
  leaseExpiresAt: number;
  record?: IdempotencyRecord;
  expiresAt: number;
}

/**
 * A test double of the idempotency store: the rules of {@link IdempotencyStore} in one process's memory, for unit
 * and transport tests that are not about sharing. Services use `PostgresIdempotencyStore`; this is not a runtime mode.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  async claim(key: string, owner: string, { leaseInMs, ttlInMs }: ClaimOptions): Promise<IdempotencyClaim> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt >= now) {
      if (entry.state === 'done') return { status: 'done', record: entry.record! };
      if (entry.leaseExpiresAt >= now && entry.owner !== owner) return { status: 'running', owner: entry.owner!, leaseRemainingInMs: entry.leaseExpiresAt - now };
    }
    this.entries.set(key, { state: 'running', owner, leaseExpiresAt: now + leaseInMs, expiresAt: now + ttlInMs });
    return { status: 'claimed' };
  }

  async renew(key: string, owner: string, leaseInMs: number): Promise<boolean> {
    const entry = this.entries.get(key);
    if (entry?.state !== 'running' || entry.owner !== owner) return false;
    entry.leaseExpiresAt = Date.now() + leaseInMs;
    return true;
  }

  async complete(key: string, record: IdempotencyRecord, ttlInMs: number): Promise<void> {
    this.entries.set(key, { state: 'done', record, leaseExpiresAt: 0, expiresAt: Date.now() + ttlInMs });
  }

  async release(key: string, owner: string): Promise<void> {
    const entry = this.entries.get(key);
    if (entry?.state === 'running' && entry.owner === owner) this.entries.delete(key);
  }
}
