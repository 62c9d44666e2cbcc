import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { telemetry } from './instrumentation.js';
import { Logger } from 'nestjs-pino';
import { assertNoSecretSettings, AzureIdentityService } from '@keyless/auth';
import { applicationInsightsAllowance } from '@keyless/observability';
import { gatewayConfig, type GatewayConfig } from './config/gateway.config.js';
import { createGatewayApp } from './gateway.app.js';

async function bootstrap(): Promise<void> {
  // Refuse keys and connection strings before anything else reads the environment.
  assertNoSecretSettings(process.env, { allow: applicationInsightsAllowance });
  const app = await createGatewayApp();
  const config = app.get<GatewayConfig>(gatewayConfig.KEY);
  if (config.applicationInsights) telemetry.exportToAzureMonitor(config.applicationInsights, app.get(AzureIdentityService).credential);
  await app.listen(config.http.port, config.http.host);
  app.get(Logger).log(`gateway listening on http://${config.http.host}:${(app.getHttpServer().address() as AddressInfo).port} (OpenAPI at /docs)`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
