import { Module } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Database } from './database.js';
import { DatabaseHealthIndicator } from './database.health.js';
import { DatabaseConfigurableModule } from './database.module-definition.js';

/**
 * The service's PostgreSQL as a Nest module: {@link Database} (the pool, the schema applied at start with retries)
 * and {@link DatabaseHealthIndicator}. Global by default. The pool comes from `@keyless/auth`.
 *
 * @example
 * DatabaseModule.forRootAsync({
 *   inject: [AzureClientFactory, config.KEY],
 *   useFactory: (clients: AzureClientFactory, config: Config) => ({
 *     pool: clients.create('postgres'),
 *     schemas: [idempotencySchema, catalogSchema(config.embeddingDimensions)],
 *   }),
 * })
 */
@Module({
  providers: [HealthIndicatorService, Database, DatabaseHealthIndicator],
  exports: [Database, DatabaseHealthIndicator],
})
export class DatabaseModule extends DatabaseConfigurableModule {}
