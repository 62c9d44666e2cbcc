import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { telemetry } from './instrumentation.js';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { assertNoSecretSettings, AzureIdentityService } from '@keyless/auth';
import { applicationInsightsAllowance } from '@keyless/observability';
import { ServiceBusServer } from '@keyless/messaging';
import { AppModule } from './app.module.js';
import { visionConfig, type VisionConfig } from './config/vision.config.js';

async function bootstrap(): Promise<void> {
  assertNoSecretSettings(process.env, { allow: applicationInsightsAllowance });
  // The HTTP driver named in code rather than loaded by name at run time, so the packager sees it.
  const app = await NestFactory.create(AppModule, new ExpressAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  const config = app.get<VisionConfig>(visionConfig.KEY);
  if (config.applicationInsights) telemetry.exportToAzureMonitor(config.applicationInsights, app.get(AzureIdentityService).credential);
  app.connectMicroservice({ strategy: app.get(ServiceBusServer) });
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(config.http.port, config.http.host);
  app.get(Logger).log(`vision ready; health on http://${config.http.host}:${(app.getHttpServer().address() as AddressInfo).port}/health/ready`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`vision failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
