// @keyless/messaging: a NestJS transport over Azure Service Bus (requests with replies on per-instance
// sessions, events through topic subscriptions), with contract validation, a settlement policy, an
// idempotency guard, trace propagation, health and metrics. The transport's parts that only its tests and tools
// use (the client proxy class, the settlement policy functions, the options token) are in `@keyless/messaging/internals`.
export { MessagingModule } from './messaging.module.js';
export type { MessagingModuleOptions } from './messaging.module-definition.js';
export { ServiceBusServer } from './server/service-bus.server.js';
export type { ReceiverHealth, ServiceBusServerOptions } from './server/service-bus.server.js';
export { ServiceBusContext } from './server/service-bus.context.js';
export { OnEvent, OnRequest } from './server/handler.decorators.js';
export type { ReplySessionHealth, ServiceBusClientProxyOptions } from './client/service-bus.client-proxy.js';
export { MessagingClient } from './client/messaging.client.js';
export { ServiceBusRecord, ServiceBusRecordBuilder } from './client/service-bus.record-builder.js';
export type { ServiceBusRecordOptions } from './client/service-bus.record-builder.js';
export { MessagingHealthIndicator } from './messaging.health.js';
export type { ServiceBusErrorExplainer } from './access-denial.js';
export type { SettlementPolicyOptions } from './settlement-policy.js';
export { idempotencySchema, PostgresIdempotencyStore } from './idempotency/postgres-idempotency.store.js';
export type { ClaimOptions, IdempotencyClaim, IdempotencyRecord, IdempotencyStore } from './idempotency/idempotency-store.js';
export { DeadLetterError, InvalidPayloadError, InvalidReplyError, isMessagingError, MessagingError, RequestTimeoutError } from './errors.js';
export { isTransientSendError } from './send-errors.js';
export type { MessagingErrorCode, RemoteErrorPayload } from './errors.js';
