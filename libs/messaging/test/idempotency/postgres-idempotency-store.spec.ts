import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { waitFor } from '@keyless/testing';
import { idempotencySchema, PostgresIdempotencyStore } from '../../src/index.js';
import { idempotencyStoreRules } from '../support/idempotency-store-rules.js';

// The store against the local Azure's PostgreSQL with the recommendation host's identity and real tokens; two pools
// stand for two instances of a service.
describe(PostgresIdempotencyStore.name, () => {
  let test: TestAzure;
  let databases: TestDatabase[] = [];
  let stores: [PostgresIdempotencyStore, PostgresIdempotencyStore];

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
    const env = test.enterHost('recommendation');
    databases = await Promise.all([openTestDatabase(env, { schemas: [idempotencySchema] }), openTestDatabase(env, { schemas: [idempotencySchema] })]);
    stores = [new PostgresIdempotencyStore(databases[0]!.pool), new PostgresIdempotencyStore(databases[1]!.pool)];
  }, 120_000);
  afterAll(async () => {
    await Promise.all(databases.map((d) => d.close()));
    await test?.stop();
  });

  idempotencyStoreRules(() => stores);

  it('deletes rows past their TTL as claims go on, so the table holds about a TTL of messages, not every message ever', async () => {
    const rows = async () => Number((await databases[0]!.pool.query<{ n: string }>(`SELECT count(*) AS n FROM messaging_handled_messages WHERE key LIKE 'ttl:%'`)).rows[0]!.n);
    // A new store: every 1,000th of its claims deletes up to 1,000 expired rows.
    const store = new PostgresIdempotencyStore(databases[0]!.pool);
    for (let i = 0; i < 1000; i++) await store.claim(`ttl:${i}`, 'a', { leaseInMs: 1, ttlInMs: 1 });
    // The batch may take the other tests' expired rows first: nearly all of these 1,000 go, not necessarily every one.
    await waitFor('the expired rows to be deleted', async () => (await rows()) < 100, 20_000);
  }, 60_000);

  it('keeps a large reply intact (jsonb)', async () => {
    const reply = { ok: true, data: { items: Array.from({ length: 500 }, (_, i) => ({ id: `p-${i}`, text: 'ü'.repeat(50) })) } };
    await stores[0].complete('requests:large', { handledAt: 1, reply }, 60_000);
    await expect(stores[1].claim('requests:large', 'b', { leaseInMs: 1000, ttlInMs: 1000 })).resolves.toEqual({ status: 'done', record: { handledAt: 1, reply } });
  });
});
