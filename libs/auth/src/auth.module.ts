import { Module } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { AUTH_MODULE_OPTIONS, AuthConfigurableModule, RESOLVED_AUTH_OPTIONS } from './auth.module-definition.js';
import { resolveAuthOptions, type AuthModuleOptions } from './auth-options.js';
import { AzureIdentityService } from './azure-identity.service.js';
import { AzureClientFactory } from './clients/azure-client.factory.js';
import { AccessDiagnostics } from './diagnostics/access-diagnostics.js';
import { AuthHealthIndicator } from './observability/auth.health.js';
import { StartupAccessCheck } from './startup/startup-access.check.js';

/**
 * The one credential of the process, as a Nest module: `AzureIdentityService` (credential and token
 * providers), `AzureClientFactory`, `AccessDiagnostics` and `AuthHealthIndicator`, plus the startup
 * access check. Global by default.
 *
 * @example
 * AuthModule.forRootAsync({
 *   inject: [azureConfig.KEY],
 *   useFactory: (azure: ConfigType<typeof azureConfig>) => ({
 *     clientId: azure.clientId,
 *     audiences: ['cognitiveServices', 'serviceBus'],
 *     resources: { openAi: { endpoint: azure.openAiEndpoint, resourceId: azure.openAiResourceId } },
 *   }),
 * })
 */
@Module({
  providers: [
    {
      provide: RESOLVED_AUTH_OPTIONS,
      useFactory: (options: AuthModuleOptions) => resolveAuthOptions(options),
      inject: [AUTH_MODULE_OPTIONS],
    },
    HealthIndicatorService,
    AzureIdentityService,
    AccessDiagnostics,
    AzureClientFactory,
    AuthHealthIndicator,
    StartupAccessCheck,
  ],
  exports: [AzureIdentityService, AccessDiagnostics, AzureClientFactory, AuthHealthIndicator],
})
export class AuthModule extends AuthConfigurableModule {}
