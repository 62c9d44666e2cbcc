// `@keyless/messaging/internals`: the transport's parts that only its own tests, benches and tools use. Apps send
// through `MessagingClient` and receive through `ServiceBusServer`; an eslint rule keeps this entry out of apps' sources.
export { MESSAGING_MODULE_OPTIONS } from './messaging.module-definition.js';
export { ErrorPassthroughFilter } from './server/handler.decorators.js';
export { ServiceBusClientProxy } from './client/service-bus.client-proxy.js';
export { backoff, settle, settlementDefaults } from './settlement-policy.js';
export type { HandlingOutcome, SettlementAction } from './settlement-policy.js';
