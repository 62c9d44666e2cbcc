import type { DynamicModule } from '@nestjs/common';
import { ConfigModule, type ConfigFactory, type ConfigFactoryKeyHost, type ConfigModuleOptions } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { AuthModule, type AuthModuleOptions } from '@keyless/auth';
import type { ServiceConfiguration } from '@keyless/contracts';
import { HealthModule } from './health.controller.js';
import { HTTP_SERVER_LIMITS, HttpServerLimitsModule } from './http-server-limits.js';
import { loggerOptions } from './logger-options.js';

/** Options of {@link serviceModules}: what differs between the services. */
export interface ServiceModulesOptions<Config extends ServiceConfiguration> {
  /** The service's name in its logs. */
  name: string;
  /** The service's environment schema: validated once at boot, every invalid variable reported. */
  environment: NonNullable<ConfigModuleOptions['validationSchema']>;
  /** The service's configuration namespace (`registerAs(name, …)`), built from that environment. */
  config: ConfigFactory<Config> & ConfigFactoryKeyHost<Config>;
  /**
   * The service's one credential (`AuthModule`): the audiences it holds tokens for and the Azure resources its clients
   * use besides the Service Bus namespace, which every service has (`config.serviceBus`). The client id is
   * `config.identity.clientId`.
   */
  auth: { audiences: NonNullable<AuthModuleOptions['audiences']>; resources?: (config: Config) => Omit<NonNullable<AuthModuleOptions['resources']>, 'serviceBus'> };
}

/**
 * The modules every service's `AppModule` imports besides its own: the configuration (global, from the process
 * environment only — no `.env` file), the pino logger at the configured level, the identity (`AuthModule`, global, its local fix commands naming `config.localAzureHome`),
 * the health endpoints (with the loopback-only details listener when `HEALTH_DETAILS_PORT` is set), and the limits
 * of both HTTP listeners on slow clients (`config.http.limits`).
 *
 * @example
 * @Module({
 *   imports: [
 *     ...serviceModules({ name: 'vision', environment: visionEnvironmentSchema, config: visionConfig, auth: { audiences: ['serviceBus', 'cognitiveServices'], resources: (c) => ({ vision: c.vision }) } }),
 *     MessagingModule.forRootAsync(…),
 *   ],
 * })
 */
export function serviceModules<Config extends ServiceConfiguration>(options: ServiceModulesOptions<Config>): (DynamicModule | Promise<DynamicModule>)[] {
  const { name, environment, config, auth } = options;
  return [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, validationSchema: environment, load: [config] }),
    LoggerModule.forRootAsync({ inject: [config.KEY], useFactory: (c: Config) => loggerOptions({ service: name, level: c.logLevel }) }),
    AuthModule.forRootAsync({
      inject: [config.KEY],
      useFactory: (c: Config) => ({
        clientId: c.identity.clientId,
        audiences: auth.audiences,
        resources: { serviceBus: c.serviceBus, ...auth.resources?.(c) },
        // The local fix commands of its errors name the home the service runs against (`LOCAL_AZURE_HOME`), or the
        // compose service that runs the local Azure (`LOCAL_AZURE_COMPOSE_SERVICE`).
        ...(c.localAzureHome ? { localAzureHome: c.localAzureHome } : {}),
        ...(c.localAzureComposeService ? { localAzureComposeService: c.localAzureComposeService } : {}),
      }),
    }),
    HealthModule.forRootAsync({
      inject: [config.KEY],
      useFactory: (c: Config) => ({ limits: c.http.limits, ...(c.http.healthDetailsPort !== undefined ? { detailsPort: c.http.healthDetailsPort } : {}) }),
    }),
    { module: HttpServerLimitsModule, providers: [{ provide: HTTP_SERVER_LIMITS, inject: [config.KEY], useFactory: (c: Config) => c.http.limits }] },
  ];
}
