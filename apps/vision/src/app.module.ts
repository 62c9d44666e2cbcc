import { Module } from '@nestjs/common';
import { eventDeliveryAttempts, queues, subscriptions, topics } from '@keyless/contracts';
import { AzureClientFactory } from '@keyless/auth';
import { Database, DatabaseModule } from '@keyless/database';
import { idempotencySchema, MessagingModule, PostgresIdempotencyStore } from '@keyless/messaging';
import { serviceModules } from '@keyless/observability';
import { IMAGE_ANALYSIS_CLIENT, ImageAnalyzer } from './analysis/image-analyzer.js';
import { VisionHandlers } from './analysis/vision.handlers.js';
import { visionConfig, visionEnvironmentSchema, type VisionConfig } from './config/vision.config.js';

@Module({
  imports: [
    ...serviceModules({
      name: 'vision',
      environment: visionEnvironmentSchema,
      config: visionConfig,
      auth: { audiences: ['serviceBus', 'cognitiveServices', 'postgres'], resources: (config) => ({ vision: config.vision, postgres: config.postgres }) },
    }),
    // The handled-message store, shared by every instance; its schema is applied at start.
    DatabaseModule.forRootAsync({
      inject: [AzureClientFactory],
      useFactory: (clients: AzureClientFactory) => ({ pool: clients.create('postgres', { applicationName: 'vision' }), schemas: [idempotencySchema] }),
    }),
    MessagingModule.forRootAsync({
      inject: [AzureClientFactory, visionConfig.KEY, Database],
      useFactory: (clients: AzureClientFactory, config: VisionConfig, database: Database) => ({
        client: clients.create('serviceBus'),
        server: {
          requests: { queue: queues.visionRequests, maxConcurrentCalls: config.maxConcurrency, replyQueues: [queues.replies] },
          events: [{ topic: topics.events, subscription: subscriptions.vision, maxConcurrentCalls: config.maxConcurrency }],
          // Retries outlast a dependency's outage of about two minutes (see eventDeliveryAttempts).
          settlement: { maxAttempts: eventDeliveryAttempts },
          // Shared by every instance: a product image analysed by one is not analysed again by another.
          idempotencyStore: new PostgresIdempotencyStore(database.pool),
        },
        // Publishes vision events; answers requests through the server's replies, so no reply session.
        proxy: {},
      }),
    }),
  ],
  controllers: [VisionHandlers],
  providers: [ImageAnalyzer, { provide: IMAGE_ANALYSIS_CLIENT, inject: [AzureClientFactory], useFactory: (clients: AzureClientFactory) => clients.create('vision') }],
})
export class AppModule {}
