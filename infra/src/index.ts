// @keyless/infra: consistency checks of the Azure deployment against the files that define it and the code.
export { checkInfrastructure } from './checks/check-infrastructure.js';
export type { InfraLayout } from './checks/check-infrastructure.js';
export { platformNeeds, privilegedRoles, requiredGrants, scopePath } from './checks/access-checks.js';
export type { AccessGrant, RbacKnowledge, RequiredGrant, ResourceKey, RoleInfo } from './checks/access-checks.js';
export { requiredAppSettings } from './checks/bicep-checks.js';
export { databaseAppSettings, databaseNeeds } from './checks/postgres-checks.js';
export type { DatabasePrincipalDeclaration } from './checks/postgres-checks.js';
export { gatewayAppHook } from './checks/gateway-app-checks.js';
export { formatProblem } from './checks/infra-problem.js';
export type { InfraProblem, InfraProblemCode } from './checks/infra-problem.js';
export { readTopology } from './checks/topology.js';
export type { Topology } from './checks/topology.js';
export { DeployTimeValue, ResourceInstance, evaluateDeployment } from './bicep/bicep-evaluator.js';
export type { EvaluatedDeployment } from './bicep/bicep-evaluator.js';
export { parseBicep } from './bicep/bicep-syntax.js';
export type { BicepFile } from './bicep/bicep-syntax.js';
export { InfraCheckError, isInfraCheckError } from './errors.js';
export type { InfraCheckErrorCode } from './errors.js';
