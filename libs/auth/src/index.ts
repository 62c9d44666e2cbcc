// Public surface of @keyless/auth: the one credential of a Keyless service.
import visionPackage from '@azure-rest/ai-vision-image-analysis';

export { AuthModule } from './auth.module.js';
export { AUTH_MODULE_OPTIONS, RESOLVED_AUTH_OPTIONS } from './auth.module-definition.js';
export type { AuthModuleExtras } from './auth.module-definition.js';
export { authDefaults, resolveAuthOptions } from './auth-options.js';
export type {
  AuthModuleOptions,
  AzureResourceOptions,
  OpenAiResourceOptions,
  PostgresResourceOptions,
  ResolvedAuthOptions,
  ServiceBusResourceOptions,
  VisionResourceOptions,
} from './auth-options.js';
export { resolveAudience, wellKnownAudiences } from './audiences.js';
export type { Audience, AudienceName, WellKnownAudience } from './audiences.js';
export { AzureIdentityService } from './azure-identity.service.js';
export type { BearerTokenProvider, IdentitySummary } from './azure-identity.service.js';
export { AzureClientFactory, clientDefaults } from './clients/azure-client.factory.js';
export { postgresPoolDefaults } from './clients/postgres-pool.js';
export type { PostgresFactoryOptions } from './clients/postgres-pool.js';
export type {
  AzureClientKind,
  AzureClientOptions,
  AzureClients,
  OpenAiFactoryOptions,
  ServiceBusFactoryOptions,
  VisionFactoryOptions,
} from './clients/azure-client.factory.js';
export { AccessDiagnostics } from './diagnostics/access-diagnostics.js';
export type { AccessDenialHint, AzureDataPlane, DatabaseSignIn, ServiceBusEntity } from './diagnostics/access-diagnostics.js';
export { builtInRoles, knownDataActions, leastPrivilegedRoleFor } from './diagnostics/built-in-roles.js';
export type { BuiltInRole } from './diagnostics/built-in-roles.js';
export {
  AccessDeniedError,
  AuthConfigurationError,
  AuthError,
  DatabaseAccessDeniedError,
  isAccessDeniedError,
  isDatabaseAccessDeniedError,
  isAuthError,
  SecretSettingError,
  StartupAccessCheckError,
  TokenAcquisitionError,
} from './errors.js';
export type {
  AccessDenial,
  AuthConfigurationErrorCode,
  AuthErrorCode,
  CredentialMode,
  DatabaseAccessDenial,
  DatabaseRefusalReason,
  Principal,
  RoleNeeded,
  SecretSetting,
  TokenAcquisitionErrorCode,
  TokenRequestContext,
} from './errors.js';
export { AuthHealthIndicator } from './observability/auth.health.js';
export type { AuthHealthDetails } from './observability/auth.health.js';
export { authMetricNames } from './observability/auth.metrics.js';
export type { TokenRequestTrigger } from './observability/auth.metrics.js';
export { assertNoSecretSettings, findSecretSettings } from './secrets/secret-settings.guard.js';
export type { SecretSettingsGuardOptions } from './secrets/secret-settings.guard.js';
export { StartupAccessCheck } from './startup/startup-access.check.js';
export { readTokenClaims } from './tokens/token-claims.js';
export type { TokenClaims } from './tokens/token-claims.js';
export type { AudienceTokenStatus, TokenFailure } from './tokens/token-cache.js';

// Types of the Azure clients and credentials the factory hands out: apps may not import Azure SDKs.
export type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
export type { ServiceBusClient, ServiceBusClientOptions } from '@azure/service-bus';
export type { AzureOpenAI } from 'openai';
export type { Pool as PostgresPool, PoolClient as PostgresPoolClient, QueryResult, QueryResultRow } from 'pg';
export type { ImageAnalysisClient } from '@azure-rest/ai-vision-image-analysis';

/** `isUnexpected` of the Vision image-analysis REST client: true for any answer other than 200. */
export const isUnexpectedImageAnalysisResponse = visionPackage.isUnexpected;
