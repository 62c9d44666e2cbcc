import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { LoggerService } from '@nestjs/common';
import express from 'express';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { maxInlineImageBytes } from '@keyless/contracts';
import { httpTracing } from '@keyless/observability';
import { AppModule } from './app.module.js';
import { gatewayConfig, type GatewayConfig } from './config/gateway.config.js';
import { clientAddressRateLimit } from './http/client-address-rate-limit.js';
import { DrainingExpressAdapter } from './http/draining-express.adapter.js';
import { gatewayOpenApiDocument } from './http/openapi.js';
import { SchemaOutputPipe } from './http/request-validation.js';

/** JSON bodies are small (a product is a few KB); images have their own limit. */
const jsonBodyLimit = '64kb';

/**
 * JSON between systems is UTF-8 (RFC 8259 §8.1). The body parser would also decode a declared UTF-7, UTF-16 or UTF-32
 * (any `utf-*`), and UTF-7 is a known way to slip markup past filters that read the bytes: those get 415 as any other
 * charset does. Runs before the body is decoded; throwing an error with `status` and `type` is the parser's own shape.
 */
function utf8Only(_request: unknown, _response: unknown, _body: Buffer, encoding: string): void {
  if (encoding.toLowerCase() === 'utf-8') return;
  throw Object.assign(new Error(`unsupported charset "${encoding.toUpperCase()}"`), { status: 415, type: 'charset.unsupported', charset: encoding });
}

/** Options of {@link createGatewayApp}. */
export interface GatewayAppOptions {
  /** Where Nest logs. **Default**: the app's pino logger (structured logs). */
  logger?: LoggerService;
}

/**
 * The gateway as an HTTP app, configured from the environment (validated), not yet listening: what
 * `main.ts` starts and what tests run in-process. Order of the HTTP pipeline, cheapest refusal first: the
 * per-address rate limit, tracing, security headers, body parsing, then Nest (caller authentication, the
 * per-caller limit, validation, the handler). Shutdown signals are left to `runService` (main.ts), which closes the
 * app, flushes the asynchronous log lines and exits 0.
 */
export async function createGatewayApp(options: GatewayAppOptions = {}): Promise<NestExpressApplication> {
  // The HTTP driver named in code rather than loaded by name at run time, so the packager sees it.
  // Its close() drains keep-alive connections, so SIGTERM under load ends (see draining-express.adapter.ts).
  const adapter = new DrainingExpressAdapter();
  const app = await NestFactory.create<NestExpressApplication>(AppModule, adapter, { bufferLogs: true, bodyParser: false });
  app.useLogger(options.logger ?? app.get(Logger));
  const config = app.get<GatewayConfig>(gatewayConfig.KEY);

  app.disable('x-powered-by');
  app.use(adapter.tracker);
  // Before anything costs: an unauthenticated flood is refused here, before tracing, parsing or a signature check.
  app.use(clientAddressRateLimit(config.clientAddresses));
  // Every request that gets through gets its server span (continuing a caller's traceparent) before anything logs.
  app.use(httpTracing());
  app.use(
    helmet({
      // Swagger UI at /docs needs inline styles and scripts of its own bundle; the API itself serves JSON only.
      contentSecurityPolicy: { directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'style-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } },
    }),
  );
  // Not strict: `null` or `3` is valid JSON, and the route's schema names `body` ("expected object, received null");
  // the strict parser would call it "not valid JSON", which sends the caller looking for a syntax error.
  app.use(express.json({ limit: jsonBodyLimit, type: ['application/json', 'application/*+json'], verify: utf8Only, strict: false }));
  app.use(express.raw({ limit: maxInlineImageBytes, type: ['image/*', 'application/octet-stream'] }));
  app.useGlobalPipes(new SchemaOutputPipe());

  const document = gatewayOpenApiDocument(app, { authorityHost: config.callers.authorityHost, tenantId: config.callers.tenantId, audience: config.callers.audiences[0]! });
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}
