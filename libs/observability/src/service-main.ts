import type { AddressInfo } from 'node:net';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { assertNoSecretSettings, AzureIdentityService } from '@keyless/auth';
import type { ServiceConfiguration, Settings } from '@keyless/contracts';
import { Database } from '@keyless/database';
import { ServiceBusServer } from '@keyless/messaging';
import { applicationInsightsAllowance } from './azure-monitor.js';
import { stopOnSignals } from './logger-options.js';
import type { Telemetry } from './telemetry.js';

/** Options of {@link startService}: what differs between the services' `main.ts`. */
export interface ServiceMainOptions<App extends INestApplication> {
  /** The service's name in its log lines. */
  name: string;
  /** The process environment: checked for keys and connection strings before the app is built. */
  env: Settings;
  /** From the service's `instrumentation.ts`, imported first. */
  telemetry: Telemetry;
  /** Builds the app, not yet listening (`createServiceApp(AppModule)` for a bus service). */
  createApp(): Promise<App>;
  /** The service's configuration namespace token (`registerAs(…).KEY`); its value extends `ServiceConfiguration`. */
  configKey: string | symbol;
  /**
   * Receives from Service Bus: connects `ServiceBusServer` and starts it once the database is ready (health answers
   * meanwhile: 503 with the reason while the schema is retried). **Default**: false (an HTTP-only app).
   */
  receivesFromBus?: boolean;
  /** Appended to the "listening" line (e.g. where the API's document is). */
  listeningNote?: string;
}

/**
 * A bus service's app, not yet listening: Express named in code (not loaded by name at run time, so the packager
 * sees it), logs buffered until the app's pino logger takes over.
 */
export async function createServiceApp(module: Type): Promise<INestApplication> {
  const app = await NestFactory.create(module, new ExpressAdapter(), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  return app;
}

/**
 * What every Keyless service's `main.ts` does, in order: refuses keys and connection strings in `env` before anything
 * else reads it (`SecretSettingError` naming each variable), builds the app, exports telemetry to Application
 * Insights when configured (with the identity's credential), connects the bus receiver, listens, and — for a bus
 * service — starts receiving once the database is ready. Resolves with the app once it listens.
 *
 * @throws {SecretSettingError} (`@keyless/auth`) when `env` holds a key, connection string or password; the app is not built.
 */
export async function startService<App extends INestApplication>(options: ServiceMainOptions<App>): Promise<App> {
  assertNoSecretSettings(options.env, { allow: applicationInsightsAllowance });
  const app = await options.createApp();
  const config = app.get<ServiceConfiguration>(options.configKey);
  if (config.applicationInsights) options.telemetry.exportToAzureMonitor(config.applicationInsights, app.get(AzureIdentityService).credential);
  if (options.receivesFromBus) app.connectMicroservice({ strategy: app.get(ServiceBusServer) });
  stopOnSignals(app);
  await app.listen(config.http.port, config.http.host);
  const log = app.get(Logger);
  const address = `http://${config.http.host}:${(app.getHttpServer().address() as AddressInfo).port}`;
  if (!options.receivesFromBus) {
    log.log(`${options.name} listening on ${address}${options.listeningNote ? ` ${options.listeningNote}` : ''}`);
    return app;
  }
  const health = `${address}/health/ready`;
  log.log(`${options.name} listening; health on ${health}`);
  if (!(await app.get(Database).whenReady())) return app;
  await app.startAllMicroservices();
  log.log(`${options.name} ready; health on ${health}`);
  return app;
}

/** {@link startService} as a process's entry: a failure ends the process with exit code 1 and one line on stderr. */
export function runService<App extends INestApplication>(options: ServiceMainOptions<App>): void {
  startService(options).catch((error: unknown) => {
    process.stderr.write(`${options.name} failed to start: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
