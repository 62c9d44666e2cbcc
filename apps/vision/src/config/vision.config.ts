import { registerAs } from '@nestjs/config';
import { postgresServer, postgresSettings, serviceConfiguration, serviceSettings, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

/** The vision service's environment, validated once at boot (every invalid variable is reported). */
export const visionEnvironmentSchema = settingsSchema({
  ...serviceSettings({ port: 3002 }),
  /** Azure AI Vision endpoint (`https://<account>.cognitiveservices.azure.com`). */
  AZURE_VISION_ENDPOINT: z.url(),
  /** ARM id of the Vision account, for exact fix commands in access diagnostics. Optional. */
  AZURE_VISION_RESOURCE_ID: z.string().optional(),
  /** The shared PostgreSQL (libpq's variables): the handled-message store of every instance. */
  ...postgresSettings,
  /** Images analysed at once, per source (requests, product events). */
  VISION_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
});

export const visionConfig = registerAs('vision', () => {
  const env = visionEnvironmentSchema.parse(process.env);
  return {
    ...serviceConfiguration(env),
    vision: { endpoint: env.AZURE_VISION_ENDPOINT, ...(env.AZURE_VISION_RESOURCE_ID ? { resourceId: env.AZURE_VISION_RESOURCE_ID } : {}) },
    postgres: postgresServer(env),
    maxConcurrency: env.VISION_MAX_CONCURRENCY,
  };
});

export type VisionConfig = ReturnType<typeof visionConfig>;
