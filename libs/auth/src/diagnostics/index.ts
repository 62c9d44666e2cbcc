// `@keyless/auth/diagnostics`: what the doctor, infra checks, benches and tests need beyond an app's surface —
// access diagnostics and the built-in role table, the option resolution and defaults, the audience table, metric
// names, token claims, the startup access check and the whole error family. Apps import `@keyless/auth` only
// (an eslint rule keeps this entry out of apps' sources).
export { AccessDiagnostics } from './access-diagnostics.js';
export type { AccessDenialHint, AzureDataPlane, DatabaseSignIn, ServiceBusEntity } from './access-diagnostics.js';
export { builtInRoles, knownDataActions, leastPrivilegedRoleFor } from './built-in-roles.js';
export type { BuiltInRole } from './built-in-roles.js';
export { AUTH_MODULE_OPTIONS, RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
export { authDefaults, resolveAuthOptions } from '../auth-options.js';
export { resolveAudience, wellKnownAudiences } from '../audiences.js';
export { clientDefaults } from '../clients/azure-client.factory.js';
export { postgresPoolDefaults } from '../clients/postgres-pool.js';
export {
  AuthConfigurationError,
  DatabaseAccessDeniedError,
  isDatabaseAccessDeniedError,
  SecretSettingError,
  StartupAccessCheckError,
  TokenAcquisitionError,
} from '../errors.js';
export type {
  AuthConfigurationErrorCode,
  DatabaseAccessDenial,
  DatabaseRefusalReason,
  SecretSetting,
  TokenAcquisitionErrorCode,
  TokenRequestContext,
} from '../errors.js';
export { authMetricNames } from '../observability/auth.metrics.js';
export { findSecretSettings } from '../secrets/secret-settings.guard.js';
export { StartupAccessCheck } from '../startup/startup-access.check.js';
export { readTokenClaims } from '../tokens/token-claims.js';
