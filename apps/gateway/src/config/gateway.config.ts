import { registerAs } from '@nestjs/config';
import { localGatewayAudience, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

const guid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID');

/**
 * The gateway's environment, validated once at boot; every invalid variable is reported. The same
 * variables point it at the local Azure (from `.local-azure/env/gateway.env`) or at Azure (app settings).
 */
export const gatewayEnvironmentSchema = settingsSchema({
  /** HTTP port. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Address to bind; `0.0.0.0` in containers and App Service. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Port of the loopback-only listener with the readiness details (token expiries, links, last errors);
   * unset: no such listener, and the public /health/ready says only up or down per check.
   */
  HEALTH_DETAILS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Client id of the user-assigned managed identity the gateway runs as. */
  AZURE_CLIENT_ID: guid,
  /** The Entra tenant of callers' tokens. */
  AZURE_TENANT_ID: guid,
  /** Entra authority host that publishes the tenant's keys (the local Azure's locally). */
  AZURE_AUTHORITY_HOST: z.url().default('https://login.microsoftonline.com'),
  /** Application ID URI of the gateway's app registration: callers request tokens for it. */
  GATEWAY_AUDIENCE: z.string().min(1).default(localGatewayAudience),
  /** Client id of the gateway's app registration, accepted as an audience too. Optional. */
  GATEWAY_APP_ID: guid.optional(),
  /** Service Bus namespace host (and port locally). Connection strings are refused. */
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: z.string().min(1),
  /** ARM id of the namespace, for exact fix commands in access diagnostics. Optional. */
  SERVICEBUS_NAMESPACE_RESOURCE_ID: z.string().optional(),
  /** How long a request waits for recommendation or vision before 504. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** Log level (pino): trace, debug, info, warn, error. */
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  /** Application Insights to export traces and metrics to, authenticated with the identity (Azure only). */
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().optional(),
  /** Requests per minute per caller (service principal, after authentication) before 429. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(3000),
  /** Requests per minute per client address, counted before anything else (authentication included) runs. */
  ADDRESS_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(6000),
  /**
   * Reverse proxies in front of the gateway whose X-Forwarded-For entries are trusted for the client address:
   * 0 (default) ignores the header, as anyone can write it; 1 behind App Service's front end.
   */
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(5).default(0),
});

export type GatewayEnvironment = z.output<typeof gatewayEnvironmentSchema>;

/** The gateway's configuration namespace (`ConfigService.get('gateway')`, or inject `gatewayConfig.KEY`). */
export const gatewayConfig = registerAs('gateway', () => {
  const env = gatewayEnvironmentSchema.parse(process.env);
  return {
    http: { port: env.PORT, host: env.HOST, ...(env.HEALTH_DETAILS_PORT !== undefined ? { healthDetailsPort: env.HEALTH_DETAILS_PORT } : {}) },
    identity: { clientId: env.AZURE_CLIENT_ID },
    callers: {
      authorityHost: env.AZURE_AUTHORITY_HOST,
      tenantId: env.AZURE_TENANT_ID,
      audiences: [env.GATEWAY_AUDIENCE, ...(env.GATEWAY_APP_ID ? [env.GATEWAY_APP_ID] : [])],
      rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    },
    clientAddresses: { limitPerMinute: env.ADDRESS_RATE_LIMIT_PER_MINUTE, trustedProxyHops: env.TRUSTED_PROXY_HOPS },
    serviceBus: {
      fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      ...(env.SERVICEBUS_NAMESPACE_RESOURCE_ID ? { resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID } : {}),
    },
    requestTimeoutInMs: env.REQUEST_TIMEOUT_MS,
    logLevel: env.LOG_LEVEL,
    applicationInsights: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
  };
});

export type GatewayConfig = ReturnType<typeof gatewayConfig>;
