import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { assertNoSecretSettings } from '@keyless/auth';
import { ServiceBusServer } from '@keyless/messaging';
import { AppModule } from './app.module.js';
import { recommendationConfig, type RecommendationConfig } from './config/recommendation.config.js';

async function bootstrap(): Promise<void> {
  assertNoSecretSettings(process.env);
  const app = await NestFactory.create(AppModule, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  const config = app.get<RecommendationConfig>(recommendationConfig.KEY);
  app.connectMicroservice({ strategy: app.get(ServiceBusServer) });
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(config.http.port, config.http.host);
  app.get(Logger).log(`recommendation ready; health on http://${config.http.host}:${config.http.port}/health/ready`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`recommendation failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
