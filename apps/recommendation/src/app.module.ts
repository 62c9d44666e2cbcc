import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { eventDeliveryAttempts, queues, subscriptions, topics } from '@keyless/contracts';
import { AuthModule, AzureClientFactory } from '@keyless/auth';
import { MessagingModule, SqliteIdempotencyStore } from '@keyless/messaging';
import { HealthModule, loggerOptions } from '@keyless/observability';
import { EmbeddingsService, OPENAI_CLIENT } from './ai/embeddings.service.js';
import { ExplanationsService } from './ai/explanations.service.js';
import { CATALOG_STORE } from './catalog/catalog.module-tokens.js';
import { SqliteCatalogStore, type CatalogStore } from './catalog/catalog.store.js';
import { recommendationConfig, recommendationEnvironmentSchema, type RecommendationConfig } from './config/recommendation.config.js';
import { RecommendationHandlers } from './handlers/recommendation.handlers.js';
import { RecommenderService } from './recommender.service.js';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, validationSchema: recommendationEnvironmentSchema, load: [recommendationConfig] }),
    LoggerModule.forRootAsync({
      inject: [recommendationConfig.KEY],
      useFactory: (config: RecommendationConfig) => loggerOptions({ service: 'recommendation', level: config.logLevel }),
    }),
    AuthModule.forRootAsync({
      inject: [recommendationConfig.KEY],
      useFactory: (config: RecommendationConfig) => ({
        clientId: config.identity.clientId,
        audiences: ['serviceBus', 'cognitiveServices'],
        resources: { openAi: config.openAi, serviceBus: config.serviceBus },
      }),
    }),
    MessagingModule.forRootAsync({
      inject: [AzureClientFactory, recommendationConfig.KEY],
      useFactory: (clients: AzureClientFactory, config: RecommendationConfig) => ({
        client: clients.create('serviceBus'),
        server: {
          requests: { queue: queues.recommendationRequests, maxConcurrentCalls: config.maxConcurrency, replyQueues: [queues.replies] },
          events: [{ topic: topics.events, subscription: subscriptions.recommendation, maxConcurrentCalls: config.maxConcurrency }],
          // Retries outlast a dependency's outage of about two minutes (see eventDeliveryAttempts).
          settlement: { maxAttempts: eventDeliveryAttempts },
          // Durable: an event redelivered after a crash is recognised as handled.
          idempotencyStore: new SqliteIdempotencyStore(config.storage.idempotency),
        },
      }),
    }),
    HealthModule.forRootAsync({
      inject: [recommendationConfig.KEY],
      useFactory: (config: RecommendationConfig) => (config.http.healthDetailsPort !== undefined ? { detailsPort: config.http.healthDetailsPort } : {}),
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
    {
      provide: CATALOG_STORE,
      inject: [recommendationConfig.KEY],
      useFactory: (config: RecommendationConfig): CatalogStore => new SqliteCatalogStore(config.storage.catalog),
    },
  ],
})
export class AppModule implements OnApplicationShutdown {
  constructor(@Inject(CATALOG_STORE) private readonly store: CatalogStore) {}

  onApplicationShutdown(): void {
    this.store.close();
  }
}
