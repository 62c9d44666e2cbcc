import { registerAs } from '@nestjs/config';
import { postgresServer, postgresSettings, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

const guid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID');

/** The vision service's environment, validated once at boot (every invalid variable is reported). */
export const visionEnvironmentSchema = settingsSchema({
  /** HTTP port of the health endpoints. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3002),
  HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Port of the loopback-only listener with the readiness details (token expiries, links, last errors);
   * unset: no such listener, and the public /health/ready says only up or down per check.
   */
  HEALTH_DETAILS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  AZURE_CLIENT_ID: guid,
  /** Azure AI Vision endpoint (`https://<account>.cognitiveservices.azure.com`). */
  AZURE_VISION_ENDPOINT: z.url(),
  /** ARM id of the Vision account, for exact fix commands in access diagnostics. Optional. */
  AZURE_VISION_RESOURCE_ID: z.string().optional(),
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: z.string().min(1),
  SERVICEBUS_NAMESPACE_RESOURCE_ID: z.string().optional(),
  /** The shared PostgreSQL (libpq's variables): the handled-message store of every instance. */
  ...postgresSettings,
  /** Images analysed at once, per source (requests, product events). */
  VISION_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  /** Application Insights to export traces and metrics to, authenticated with the identity (Azure only). */
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().optional(),
});

export const visionConfig = registerAs('vision', () => {
  const env = visionEnvironmentSchema.parse(process.env);
  return {
    http: { port: env.PORT, host: env.HOST, ...(env.HEALTH_DETAILS_PORT !== undefined ? { healthDetailsPort: env.HEALTH_DETAILS_PORT } : {}) },
    identity: { clientId: env.AZURE_CLIENT_ID },
    vision: { endpoint: env.AZURE_VISION_ENDPOINT, ...(env.AZURE_VISION_RESOURCE_ID ? { resourceId: env.AZURE_VISION_RESOURCE_ID } : {}) },
    serviceBus: {
      fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      ...(env.SERVICEBUS_NAMESPACE_RESOURCE_ID ? { resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID } : {}),
    },
    postgres: postgresServer(env),
    maxConcurrency: env.VISION_MAX_CONCURRENCY,
    logLevel: env.LOG_LEVEL,
    applicationInsights: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
  };
});

export type VisionConfig = ReturnType<typeof visionConfig>;
