import { randomUUID } from 'node:crypto';
import { Controller, Get, Inject, Injectable, Module, type LoggerService, type OnModuleDestroy } from '@nestjs/common';
import { ConfigModule, registerAs, type ConfigType } from '@nestjs/config';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { z } from 'zod';
import {
  assertNoSecretSettings,
  AuthHealthIndicator,
  AuthModule,
  AzureClientFactory,
  AzureIdentityService,
  type AzureOpenAI,
  type CredentialMode,
  type ServiceBusClient,
} from '../../src/index.js';

// A service wired the way gateway, recommendation and vision are: the environment is validated once at
// boot (secrets refused first), a typed `azure` namespace feeds AuthModule.forRootAsync, clients come from
// the factory, and /health includes the credential's indicator.

const azureEnvironment = z.object({
  AZURE_CLIENT_ID: z.string().optional(),
  KEYLESS_CREDENTIAL_MODE: z.enum(['managed-identity', 'azure-cli', 'azure-developer-cli']).default('managed-identity'),
  AZURE_OPENAI_ENDPOINT: z.url(),
  AZURE_OPENAI_RESOURCE_ID: z.string().min(1),
  OPENAI_API_VERSION: z.string().min(1),
  AZURE_OPENAI_CHAT_DEPLOYMENT: z.string().min(1),
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: z.string().min(1),
  SERVICEBUS_NAMESPACE_RESOURCE_ID: z.string().min(1),
});

/** Validates the whole environment at boot: secrets first, then every variable the service reads. */
export function validateEnvironment(env: Record<string, unknown>): Record<string, unknown> {
  assertNoSecretSettings(env as Record<string, string | undefined>);
  const result = azureEnvironment.safeParse(env);
  if (!result.success) throw new Error(`Invalid environment: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { ...env, ...result.data };
}

export const azureConfig = registerAs('azure', () => {
  const env = azureEnvironment.parse(process.env);
  return {
    clientId: env.AZURE_CLIENT_ID,
    mode: env.KEYLESS_CREDENTIAL_MODE as CredentialMode,
    openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT, resourceId: env.AZURE_OPENAI_RESOURCE_ID, apiVersion: env.OPENAI_API_VERSION },
    chatDeployment: env.AZURE_OPENAI_CHAT_DEPLOYMENT,
    serviceBus: { fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE, resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID },
  };
});

/** The service's Azure clients, created once from the shared credential. */
@Injectable()
export class AzureClients implements OnModuleDestroy {
  readonly openAi: AzureOpenAI;
  readonly bus: ServiceBusClient;

  constructor(@Inject(AzureClientFactory) clients: AzureClientFactory, @Inject(azureConfig.KEY) azure: ConfigType<typeof azureConfig>) {
    this.openAi = clients.create('openAi', { deployment: azure.chatDeployment, maxRetries: 0 });
    this.bus = clients.create('serviceBus');
  }

  async onModuleDestroy(): Promise<void> {
    await this.bus.close();
  }
}

@Controller()
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(AuthHealthIndicator) private readonly auth: AuthHealthIndicator,
    @Inject(AzureIdentityService) private readonly identity: AzureIdentityService,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.auth.isHealthy()]);
  }

  @Get('whoami')
  whoami() {
    return this.identity.identity;
  }
}

@Controller('reply')
export class ReplyController {
  constructor(@Inject(AzureClients) private readonly clients: AzureClients) {}

  /** One chat completion through the factory's client: what recommendation does to explain a result. */
  @Get()
  async reply() {
    const completion = await this.clients.openAi.chat.completions.create({ model: 'unused', messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
    return { reply: completion.choices[0]?.message.content };
  }

  /** Publishes one event on the bus, as the services do after a change. */
  @Get('publish')
  async publish() {
    const sender = this.clients.bus.createSender('events');
    try {
      await sender.sendMessages({ subject: 'catalog.product.upserted', messageId: randomUUID(), body: { productId: 'p-1' } });
    } finally {
      await sender.close();
    }
    return { published: true };
  }
}

/** Builds the sample app's root module; `logger` receives the library's log lines. */
export function sampleAppModule(logger: LoggerService) {
  @Module({
    imports: [
      ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [azureConfig], validate: validateEnvironment }),
      TerminusModule.forRoot({ logger: false }),
      AuthModule.forRootAsync({
        inject: [azureConfig.KEY],
        useFactory: (azure: ConfigType<typeof azureConfig>) => ({
          ...(azure.clientId !== undefined ? { clientId: azure.clientId } : {}),
          mode: azure.mode,
          audiences: ['serviceBus', 'cognitiveServices'],
          resources: { openAi: azure.openAi, serviceBus: azure.serviceBus },
          logger,
        }),
      }),
    ],
    controllers: [HealthController, ReplyController],
    providers: [AzureClients],
  })
  class SampleAppModule {}
  return SampleAppModule;
}
