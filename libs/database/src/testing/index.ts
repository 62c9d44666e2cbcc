// Test support of @keyless/database (`@keyless/database/testing`): pools against the local Azure's PostgreSQL.
export { openTestDatabase } from './test-database.js';
export type { TestDatabase, TestDatabaseOptions } from './test-database.js';
