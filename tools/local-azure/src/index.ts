// Public surface of the local Azure for tests and tools that start it in-process.
export { LocalAzure } from './local-azure.js';
export type { LocalAzureEndpoints, LocalAzureOptions } from './local-azure.js';
export { ConfigError, parseConfig, repoRoot } from './config/local-azure-config.js';
export type { LocalAzureConfig, LocalAzureConfigInput, ResourceKey } from './config/local-azure-config.js';
export type { DataPlane, DataPlaneContext, RunningDataPlane } from './data-plane.js';
export { dataPlanes } from './data-planes.js';
export { serviceBusDataPlane } from './servicebus/service-bus-data-plane.js';
export { loadTopology, parseTopology } from './servicebus/topology.js';
export type { QueueDefinition, RuleDefinition, SubscriptionDefinition, TopicDefinition, Topology } from './servicebus/topology.js';
export type { EntityRow, MessageRow, ServiceBusStatus } from './servicebus/admin-routes.js';
export { TokenRejectedError } from './guard/resource-guard.js';
export type { Caller, TokenRejectionReason } from './guard/resource-guard.js';
export { builtInRoles, dataActions, findRole } from './rbac/built-in-roles.js';
export type { RoleDefinition } from './rbac/built-in-roles.js';
export type { RoleAssignment } from './rbac/role-assignments.js';
export type { AuthorizationDecision } from './rbac/authorizer.js';
export type { AuthorizationRecord, SignInRecord } from './audit/audit-log.js';
