import { registerAs } from '@nestjs/config';
import { postgresServer, postgresSettings, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

const guid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a GUID');

/** The recommendation service's environment, validated once at boot (every invalid variable is reported). */
export const recommendationEnvironmentSchema = settingsSchema({
  /** HTTP port of the health endpoints. */
  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Port of the loopback-only listener with the readiness details (token expiries, links, last errors);
   * unset: no such listener, and the public /health/ready says only up or down per check.
   */
  HEALTH_DETAILS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  AZURE_CLIENT_ID: guid,
  /** Azure OpenAI endpoint (`https://<account>.openai.azure.com`). */
  AZURE_OPENAI_ENDPOINT: z.url(),
  AZURE_OPENAI_RESOURCE_ID: z.string().optional(),
  OPENAI_API_VERSION: z.string().min(1).default('2024-10-21'),
  AZURE_OPENAI_CHAT_DEPLOYMENT: z.string().min(1),
  AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: z.string().min(1),
  /** Dimensions requested from the embeddings model (text-embedding-3 models shorten their vectors). */
  EMBEDDINGS_DIMENSIONS: z.coerce.number().int().min(16).max(3072).default(256),
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: z.string().min(1),
  SERVICEBUS_NAMESPACE_RESOURCE_ID: z.string().optional(),
  /** The shared PostgreSQL (libpq's variables): the catalog and the handled-message store of every instance. */
  ...postgresSettings,
  /** Messages handled at once, per source (requests, events). */
  RECOMMENDATION_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  /** Application Insights to export traces and metrics to, authenticated with the identity (Azure only). */
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().optional(),
});

export const recommendationConfig = registerAs('recommendation', () => {
  const env = recommendationEnvironmentSchema.parse(process.env);
  return {
    http: { port: env.PORT, host: env.HOST, ...(env.HEALTH_DETAILS_PORT !== undefined ? { healthDetailsPort: env.HEALTH_DETAILS_PORT } : {}) },
    identity: { clientId: env.AZURE_CLIENT_ID },
    openAi: {
      endpoint: env.AZURE_OPENAI_ENDPOINT,
      apiVersion: env.OPENAI_API_VERSION,
      ...(env.AZURE_OPENAI_RESOURCE_ID ? { resourceId: env.AZURE_OPENAI_RESOURCE_ID } : {}),
    },
    deployments: { chat: env.AZURE_OPENAI_CHAT_DEPLOYMENT, embeddings: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT },
    embeddingDimensions: env.EMBEDDINGS_DIMENSIONS,
    serviceBus: {
      fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      ...(env.SERVICEBUS_NAMESPACE_RESOURCE_ID ? { resourceId: env.SERVICEBUS_NAMESPACE_RESOURCE_ID } : {}),
    },
    postgres: postgresServer(env),
    maxConcurrency: env.RECOMMENDATION_MAX_CONCURRENCY,
    logLevel: env.LOG_LEVEL,
    applicationInsights: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
  };
});

export type RecommendationConfig = ReturnType<typeof recommendationConfig>;
