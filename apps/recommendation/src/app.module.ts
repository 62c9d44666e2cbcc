import { Module } from '@nestjs/common';
import { eventDeliveryAttempts, queues, subscriptions, topics } from '@keyless/contracts';
import { AzureClientFactory } from '@keyless/auth';
import { Database, DatabaseModule } from '@keyless/database';
import { idempotencySchema, MessagingModule, PostgresIdempotencyStore } from '@keyless/messaging';
import { serviceModules } from '@keyless/observability';
import { EmbeddingsService, OPENAI_CLIENT } from './ai/embeddings.service.js';
import { ExplanationsService } from './ai/explanations.service.js';
import { CATALOG_STORE } from './catalog/catalog.module-tokens.js';
import { catalogSchema, PostgresCatalogStore, type CatalogStore } from './catalog/catalog.store.js';
import { recommendationConfig, recommendationEnvironmentSchema, type RecommendationConfig } from './config/recommendation.config.js';
import { RecommendationHandlers } from './handlers/recommendation.handlers.js';
import { RecommenderService } from './recommender.service.js';

@Module({
  imports: [
    ...serviceModules({
      name: 'recommendation',
      environment: recommendationEnvironmentSchema,
      config: recommendationConfig,
      auth: { audiences: ['serviceBus', 'cognitiveServices', 'postgres'], resources: (config) => ({ openAi: config.openAi, postgres: config.postgres }) },
    }),
    // The catalog and the handled-message store, shared by every instance; the schema is applied at start.
    DatabaseModule.forRootAsync({
      inject: [AzureClientFactory, recommendationConfig.KEY],
      useFactory: (clients: AzureClientFactory, config: RecommendationConfig) => ({
        pool: clients.create('postgres', { applicationName: 'recommendation' }),
        schemas: [idempotencySchema, catalogSchema(config.embeddingDimensions)],
      }),
    }),
    MessagingModule.forRootAsync({
      inject: [AzureClientFactory, recommendationConfig.KEY, Database],
      useFactory: (clients: AzureClientFactory, config: RecommendationConfig, database: Database) => ({
        client: clients.create('serviceBus'),
        server: {
          requests: { queue: queues.recommendationRequests, maxConcurrentCalls: config.maxConcurrency, replyQueues: [queues.replies] },
          events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: config.maxConcurrency }],
          // Retries outlast a dependency's outage of about two minutes (see eventDeliveryAttempts).
          settlement: { maxAttempts: eventDeliveryAttempts },
          // Shared by every instance: a copy handled by one is never handled again by another.
          idempotencyStore: new PostgresIdempotencyStore(database.pool),
        },
      }),
    }),
  ],
  controllers: [RecommendationHandlers],
  providers: [
    RecommenderService,
    EmbeddingsService,
    ExplanationsService,
    {
      provide: OPENAI_CLIENT,
      inject: [AzureClientFactory],
      // Throttled embedding batches wait out retry-after (the SDK honours it) a few more times than by default.
      useFactory: (clients: AzureClientFactory) => clients.create('openAi', { maxRetries: 6 }),
    },
    { provide: CATALOG_STORE, inject: [Database], useFactory: (database: Database): CatalogStore => new PostgresCatalogStore(database.pool) },
  ],
})
export class AppModule {}
