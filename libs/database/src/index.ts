// @keyless/database: the service's PostgreSQL (a pool from @keyless/auth), its schema applied at start under an
// advisory lock with retries, readiness and the classification of errors that mean "try again later".
export { DatabaseModule } from './database.module.js';
export { DATABASE_MODULE_OPTIONS, databaseDefaults } from './database.module-definition.js';
export type { DatabaseModuleExtras, DatabaseModuleOptions } from './database.module-definition.js';
export { Database } from './database.js';
export type { DatabaseState, DatabaseStatus } from './database.js';
export { DatabaseHealthIndicator } from './database.health.js';
export type { DatabaseHealthDetails } from './database.health.js';
export { applyMigrations, migrationsTable } from './schema-migrations.js';
export { inTransaction, runScript } from './transaction.js';
export { sqlLiteral } from './sql-literals.js';
export type { DatabaseSchema, Migration, MigrationReport, SchemaQuery } from './schema-migrations.js';
export { DatabaseError, describeError, isDatabaseError, isDatabaseUnavailable } from './database-errors.js';
export type { DatabaseErrorCode } from './database-errors.js';
