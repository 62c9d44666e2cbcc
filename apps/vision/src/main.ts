import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { telemetry } from './instrumentation.js';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { assertNoSecretSettings, AzureIdentityService } from '@keyless/auth';
import { applicationInsightsAllowance } from '@keyless/observability';
import { Database } from '@keyless/database';
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
  // Health first: while the database is unreachable at start, /health/ready answers 503 with the reason and the
  // schema is retried with backoff; messages are taken only once it is applied.
  await app.listen(config.http.port, config.http.host);
  const health = `http://${config.http.host}:${(app.getHttpServer().address() as AddressInfo).port}/health/ready`;
  app.get(Logger).log(`vision listening; health on ${health}`);
  if (!(await app.get(Database).whenReady())) return;
  await app.startAllMicroservices();
  app.get(Logger).log(`vision ready; health on ${health}`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`vision failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
