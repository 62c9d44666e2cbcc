import { MemoryIdempotencyStore } from '../../src/testing/index.js';
import { idempotencyStoreRules } from '../support/idempotency-store-rules.js';

// The test double follows the same rules as the PostgreSQL store (postgres-idempotency-store.spec.ts).
describe(MemoryIdempotencyStore.name, () => {
  idempotencyStoreRules(() => {
    const store = new MemoryIdempotencyStore();
    return [store, store];
  });
});
