import { Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { AzureClientFactory } from '@keyless/auth';
import type { ServiceBusErrorExplainer } from './access-denial.js';
import { MessagingClient } from './client/messaging.client.js';
import { ServiceBusClientProxy } from './client/service-bus.client-proxy.js';
import { MessagingHealthIndicator } from './messaging.health.js';
import { MESSAGING_MODULE_OPTIONS, MessagingConfigurableModule, type MessagingModuleOptions } from './messaging.module-definition.js';
import { ServiceBusServer } from './server/service-bus.server.js';

/**
 * Wires the Service Bus transport into a Nest app. With `proxy`, it provides {@link MessagingClient}
 * (typed requests and events) and acquires the reply session before the app finishes bootstrapping; with
 * `server`, it provides the {@link ServiceBusServer} strategy to connect as a microservice. Unconfigured
 * sides are provided as `null`. With `@keyless/auth`'s module in the app, both sides surface a role refusal on the
 * bus as its `AccessDeniedError` (the factory's `explainAccessDenied` is their error boundary).
 *
 * @example
 * MessagingModule.forRootAsync({
 *   inject: [AzureClientFactory],
 *   useFactory: (clients: AzureClientFactory) => ({ client: clients.create('serviceBus'), proxy: { replyQueue: queues.replies } }),
 * })
 */
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: ServiceBusClientProxy,
      inject: [MESSAGING_MODULE_OPTIONS, { token: AzureClientFactory, optional: true }],
      useFactory: (options: MessagingModuleOptions, clients?: AzureClientFactory) =>
        options.proxy ? new ServiceBusClientProxy({ explainError: accessDenialsOf(clients), ...options.proxy, client: options.client }) : null,
    },
    {
      provide: MessagingClient,
      inject: [ServiceBusClientProxy],
      useFactory: (proxy: ServiceBusClientProxy | null) => (proxy ? new MessagingClient(proxy) : null),
    },
    {
      provide: ServiceBusServer,
      inject: [MESSAGING_MODULE_OPTIONS, { token: AzureClientFactory, optional: true }],
      useFactory: (options: MessagingModuleOptions, clients?: AzureClientFactory) =>
        options.server ? new ServiceBusServer({ explainError: accessDenialsOf(clients), ...options.server, client: options.client }) : null,
    },
    MessagingHealthIndicator,
  ],
  exports: [ServiceBusClientProxy, MessagingClient, ServiceBusServer, MessagingHealthIndicator],
})
export class MessagingModule extends MessagingConfigurableModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(ServiceBusClientProxy) private readonly proxy: ServiceBusClientProxy | null) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.proxy?.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.proxy?.close();
  }
}

function accessDenialsOf(clients: AzureClientFactory | undefined): ServiceBusErrorExplainer | undefined {
  return clients ? (error, hint) => clients.explainAccessDenied(error, hint) : undefined;
}
