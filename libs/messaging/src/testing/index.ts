// Test doubles of @keyless/messaging (`@keyless/messaging/testing`): fast unit tests of handlers.
export { createInMemoryMessaging, InMemoryBus, InMemoryClientProxy, InMemoryServer } from './in-memory-transport.js';
export type { DeadLetteredMessage } from './in-memory-transport.js';
export { MemoryIdempotencyStore } from './memory-idempotency.store.js';
