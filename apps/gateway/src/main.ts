import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { telemetry } from './instrumentation.js';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express from 'express';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { maxInlineImageBytes } from '@keyless/contracts';
import { assertNoSecretSettings, AzureIdentityService } from '@keyless/auth';
import { applicationInsightsAllowance, httpTracing } from '@keyless/observability';
import { AppModule } from './app.module.js';
import { gatewayConfig, type GatewayConfig } from './config/gateway.config.js';
import { SchemaOutputPipe } from './http/request-validation.js';

/** JSON bodies are small (a product is a few KB); images have their own limit. */
const jsonBodyLimit = '64kb';

async function bootstrap(): Promise<void> {
  // Refuse keys and connection strings before anything else reads the environment.
  assertNoSecretSettings(process.env, { allow: applicationInsightsAllowance });
  // The HTTP driver named in code rather than loaded by name at run time, so the packager sees it.
  const app = await NestFactory.create<NestExpressApplication>(AppModule, new ExpressAdapter(), { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(Logger));
  const config = app.get<GatewayConfig>(gatewayConfig.KEY);
  if (config.applicationInsights) telemetry.exportToAzureMonitor(config.applicationInsights, app.get(AzureIdentityService).credential);

  app.disable('x-powered-by');
  // First: every request gets its server span (continuing a caller's traceparent) before anything logs.
  app.use(httpTracing());
  app.use(
    helmet({
      // Swagger UI at /docs needs inline styles and scripts of its own bundle; the API itself serves JSON only.
      contentSecurityPolicy: { directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'style-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } },
    }),
  );
  app.use(express.json({ limit: jsonBodyLimit, type: ['application/json', 'application/*+json'] }));
  app.use(express.raw({ limit: maxInlineImageBytes, type: ['image/*', 'application/octet-stream'] }));
  app.useGlobalPipes(new SchemaOutputPipe());

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Keyless gateway')
      .setDescription(
        'Product catalog, recommendations and image analysis. Callers authenticate with an Entra access token for the ' +
          "gateway's app ID URI and need the app role each operation names. Errors are RFC 9457 problem details.",
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
      .addSecurityRequirements('bearer')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });

  app.enableShutdownHooks();
  await app.listen(config.http.port, config.http.host);
  app.get(Logger).log(`gateway listening on http://${config.http.host}:${(app.getHttpServer().address() as AddressInfo).port} (OpenAPI at /docs)`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
