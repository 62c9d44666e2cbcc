import { registerAs } from '@nestjs/config';
import { openAiApiVersion, postgresServer, postgresSettings, serviceConfiguration, serviceSettings, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

/** The recommendation service's environment, validated once at boot (every invalid variable is reported). */
export const recommendationEnvironmentSchema = settingsSchema({
  ...serviceSettings({ port: 3001 }),
  /** Azure OpenAI endpoint (`https://<account>.openai.azure.com`). */
  AZURE_OPENAI_ENDPOINT: z.url(),
  AZURE_OPENAI_RESOURCE_ID: z.string().optional(),
  OPENAI_API_VERSION: z.string().min(1).default(openAiApiVersion),
  AZURE_OPENAI_CHAT_DEPLOYMENT: z.string().min(1),
  AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: z.string().min(1),
  /** Dimensions requested from the embeddings model (text-embedding-3 models shorten their vectors). */
  EMBEDDINGS_DIMENSIONS: z.coerce.number().int().min(16).max(3072).default(256),
  /** The shared PostgreSQL (libpq's variables): the catalog and the handled-message store of every instance. */
  ...postgresSettings,
  /** Messages handled at once, per source (requests, events). */
  RECOMMENDATION_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
});

export const recommendationConfig = registerAs('recommendation', () => {
  const env = recommendationEnvironmentSchema.parse(process.env);
  return {
    ...serviceConfiguration(env),
    openAi: {
      endpoint: env.AZURE_OPENAI_ENDPOINT,
      apiVersion: env.OPENAI_API_VERSION,
      ...(env.AZURE_OPENAI_RESOURCE_ID ? { resourceId: env.AZURE_OPENAI_RESOURCE_ID } : {}),
    },
    deployments: { chat: env.AZURE_OPENAI_CHAT_DEPLOYMENT, embeddings: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT },
    embeddingDimensions: env.EMBEDDINGS_DIMENSIONS,
    postgres: postgresServer(env),
    maxConcurrency: env.RECOMMENDATION_MAX_CONCURRENCY,
  };
});

export type RecommendationConfig = ReturnType<typeof recommendationConfig>;
