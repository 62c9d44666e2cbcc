import { randomUUID } from 'node:crypto';
import type { IdempotencyStore } from '../../src/index.js';
import { waitFor } from './wait-for.js';

/**
 * The rules of `IdempotencyStore` (idempotency-store.ts), one test each, for any implementation: the PostgreSQL
 * store against the local Azure's PostgreSQL and the in-memory double. `stores()` gives two stores on the same
 * data, standing for two instances of a service.
 */
export function idempotencyStoreRules(stores: () => [IdempotencyStore, IdempotencyStore]): void {
  const options = { leaseInMs: 60_000, ttlInMs: 60_000 };
  const key = () => `requests:${randomUUID()}`;

  it('rule 1: lets the first instance claim an unknown message', async () => {
    const [first] = stores();
    await expect(first.claim(key(), 'a', options)).resolves.toEqual({ status: 'claimed' });
  });

  it('rule 1: lets an instance take over a claim whose lease ran out (its holder died)', async () => {
    const [first, second] = stores();
    const k = key();
    await first.claim(k, 'a', { leaseInMs: 50, ttlInMs: 60_000 });
    await waitFor('the lease to run out', async () => (await second.claim(k, 'b', options)).status === 'claimed');
    await expect(first.renew(k, 'a', 60_000)).resolves.toBe(false);
  });

  it("rule 1: lets an instance take its own claim again (a redelivery after a failure it did not record)", async () => {
    const [first] = stores();
    const k = key();
    await first.claim(k, 'a', options);
    await expect(first.claim(k, 'a', options)).resolves.toEqual({ status: 'claimed' });
  });

  it('rule 1: forgets a record past its TTL', async () => {
    const [first, second] = stores();
    const k = key();
    await first.complete(k, { handledAt: 1 }, 50);
    await waitFor('the record to expire', async () => (await second.claim(k, 'b', options)).status === 'claimed');
  });

  it('rule 2: tells another instance that the message is running, by whom and for how long', async () => {
    const [first, second] = stores();
    const k = key();
    await first.claim(k, 'a', options);
    const claim = await second.claim(k, 'b', options);
    expect(claim).toMatchObject({ status: 'running', owner: 'a' });
    expect(claim.status === 'running' && claim.leaseRemainingInMs).toBeGreaterThan(50_000);
  });

  it('rule 2: answers a handled message with its record, to every instance', async () => {
    const [first, second] = stores();
    const k = key();
    const reply = { ok: true, data: { items: [1, 2], text: 'é' } };
    await first.claim(k, 'a', options);
    await first.complete(k, { handledAt: 7, reply }, 60_000);
    await expect(second.claim(k, 'b', options)).resolves.toEqual({ status: 'done', record: { handledAt: 7, reply } });
    await expect(first.claim(k, 'a', options)).resolves.toEqual({ status: 'done', record: { handledAt: 7, reply } });
  });

  it("rule 3: renews the holder's lease and no one else's", async () => {
    const [first, second] = stores();
    const k = key();
    await first.claim(k, 'a', { leaseInMs: 1_000, ttlInMs: 60_000 });
    await expect(second.renew(k, 'b', 60_000)).resolves.toBe(false);
    await expect(first.renew(k, 'a', 60_000)).resolves.toBe(true);
    const claim = await second.claim(k, 'b', options);
    expect(claim.status === 'running' && claim.leaseRemainingInMs).toBeGreaterThan(50_000);
  });

  it('rule 4: records the outcome even when the claim was lost', async () => {
    const [first, second] = stores();
    const k = key();
    await first.complete(k, { handledAt: 3 }, 60_000);
    await expect(second.claim(k, 'b', options)).resolves.toMatchObject({ status: 'done' });
  });

  it("rule 4: releases the holder's claim so a retry can take it, and no one else's", async () => {
    const [first, second] = stores();
    const k = key();
    await first.claim(k, 'a', options);
    await second.release(k, 'b');
    expect((await second.claim(k, 'b', options)).status).toBe('running');
    await first.release(k, 'a');
    await expect(second.claim(k, 'b', options)).resolves.toEqual({ status: 'claimed' });
  });

  it('gives exactly one of many racing instances the claim', async () => {
    const [first, second] = stores();
    const k = key();
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? first : second).claim(k, `instance-${i}`, options)));
    expect(claims.filter((c) => c.status === 'claimed')).toHaveLength(1);
    expect(claims.filter((c) => c.status === 'running')).toHaveLength(7);
  });
}
