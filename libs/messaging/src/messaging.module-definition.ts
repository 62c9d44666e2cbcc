import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ServiceBusClient } from '@azure/service-bus';
import type { ServiceBusClientProxyOptions } from './client/service-bus.client-proxy.js';
import type { ServiceBusServerOptions } from './server/service-bus.server.js';

/** Options of {@link MessagingModule}. Pass the Service Bus client from `@keyless/auth`. */
export interface MessagingModuleOptions {
  /** Namespace + the process's managed-identity credential (from `@keyless/auth`; never a connection string). */
  client: ServiceBusClient;
  /** To receive requests and/or events: provides {@link ServiceBusServer} for `app.connectMicroservice`. */
  server?: Omit<ServiceBusServerOptions, 'client'>;
  /** To send requests and/or publish events: provides {@link MessagingClient} and `ServiceBusClientProxy` (`@keyless/messaging/internals`). */
  proxy?: Omit<ServiceBusClientProxyOptions, 'client'>;
}

export const {
  ConfigurableModuleClass: MessagingConfigurableModule,
  MODULE_OPTIONS_TOKEN: MESSAGING_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<MessagingModuleOptions>({ moduleName: 'Messaging' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
