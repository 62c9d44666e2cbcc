// Public surface of @keyless/auth: the one credential of a Keyless service. What apps need and no more: the
// module, the client factory, the identity service, the access-denied error and its guard, the secret guard, the
// health indicator, and the types of the SDK clients the factory hands out. Diagnostics, option internals, metric
// names and the rest of the error family are in `@keyless/auth/diagnostics` (for the doctor, infra and tests).
import visionPackage from '@azure-rest/ai-vision-image-analysis';

export { AuthModule } from './auth.module.js';
export type { AuthModuleExtras } from './auth.module-definition.js';
export type {
  AuthModuleOptions,
  AzureResourceOptions,
  OpenAiResourceOptions,
  PostgresResourceOptions,
  ResolvedAuthOptions,
  ServiceBusResourceOptions,
  VisionResourceOptions,
} from './auth-options.js';
export type { Audience, AudienceName, WellKnownAudience } from './audiences.js';
export { AzureIdentityService } from './azure-identity.service.js';
export type { BearerTokenProvider, IdentitySummary } from './azure-identity.service.js';
export { AzureClientFactory } from './clients/azure-client.factory.js';
export type { PostgresFactoryOptions } from './clients/postgres-pool.js';
export type {
  AzureClientKind,
  AzureClientOptions,
  AzureClients,
  OpenAiFactoryOptions,
  ServiceBusFactoryOptions,
  VisionFactoryOptions,
} from './clients/azure-client.factory.js';
export type { AccessDenialHint, ServiceBusEntity } from './diagnostics/access-diagnostics.js';
export { AccessDeniedError, AuthError, isAccessDeniedError, isAuthError } from './errors.js';
export type { AccessDenial, AuthErrorCode, CredentialMode, Principal, RoleNeeded } from './errors.js';
export { AuthHealthIndicator } from './observability/auth.health.js';
export type { AuthHealthDetails } from './observability/auth.health.js';
export type { TokenRequestTrigger } from './observability/auth.metrics.js';
export { assertNoSecretSettings } from './secrets/secret-settings.guard.js';
export type { SecretSettingsGuardOptions } from './secrets/secret-settings.guard.js';
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
