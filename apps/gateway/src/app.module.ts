import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { queues } from '@keyless/contracts';
import { AzureClientFactory } from '@keyless/auth';
import { MessagingModule } from '@keyless/messaging';
import { CallerAuthGuard } from './callers/caller-auth.guard.js';
import { CALLER_RATE_LIMIT, CallerRateLimitGuard } from './callers/caller-rate-limit.guard.js';
import { CallerTokenVerifier } from './callers/caller-token.verifier.js';
import { gatewayConfig, gatewayEnvironmentSchema, type GatewayConfig } from './config/gateway.config.js';
import { ProblemDetailsFilter } from './http/problem-details.filter.js';
import { RequestValidationInterceptor } from './http/request-validation.js';
import { ImagesController } from './images/images.controller.js';
import { ProductsController } from './products/products.controller.js';
import { RecommendationsController } from './recommendations/recommendations.controller.js';
import { serviceModules } from '@keyless/observability';

@Module({
  imports: [
    ...serviceModules({ name: 'gateway', environment: gatewayEnvironmentSchema, config: gatewayConfig, auth: { audiences: ['serviceBus'] } }),
    MessagingModule.forRootAsync({
      inject: [AzureClientFactory, gatewayConfig.KEY],
      useFactory: (clients: AzureClientFactory, config: GatewayConfig) => ({
        client: clients.create('serviceBus'),
        proxy: { replyQueue: queues.replies, requestTimeoutInMs: config.requestTimeoutInMs, instanceId: `gateway-${hostname()}-${randomUUID()}` },
      }),
    }),
  ],
  controllers: [ProductsController, RecommendationsController, ImagesController],
  providers: [
    { provide: CallerTokenVerifier, inject: [gatewayConfig.KEY], useFactory: (config: GatewayConfig) => new CallerTokenVerifier(config.callers) },
    { provide: CALLER_RATE_LIMIT, inject: [gatewayConfig.KEY], useFactory: (config: GatewayConfig) => config.callers.rateLimitPerMinute },
    { provide: APP_GUARD, useClass: CallerAuthGuard },
    { provide: APP_GUARD, useClass: CallerRateLimitGuard },
    { provide: APP_INTERCEPTOR, useClass: RequestValidationInterceptor },
    { provide: APP_FILTER, useClass: ProblemDetailsFilter },
  ],
})
export class AppModule {}
