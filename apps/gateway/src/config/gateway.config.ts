import { registerAs } from '@nestjs/config';
import { guidSetting, localGatewayAudience, serviceConfiguration, serviceSettings, settingsSchema } from '@keyless/contracts';
import { z } from 'zod';

/**
 * The gateway's environment, validated once at boot; every invalid variable is reported. The same
 * variables point it at the local Azure (from `.local-azure/env/gateway.env`) or at Azure (app settings).
 */
export const gatewayEnvironmentSchema = settingsSchema({
  ...serviceSettings({ port: 3000 }),
  /** The Entra tenant of callers' tokens. */
  AZURE_TENANT_ID: guidSetting,
  /** Entra authority host that publishes the tenant's keys (the local Azure's locally). */
  AZURE_AUTHORITY_HOST: z.url().default('https://login.microsoftonline.com'),
  /** Application ID URI of the gateway's app registration: callers request tokens for it. */
  GATEWAY_AUDIENCE: z.string().min(1).default(localGatewayAudience),
  /** Client id of the gateway's app registration, accepted as an audience too. Optional. */
  GATEWAY_APP_ID: guidSetting.optional(),
  /** How long a request waits for recommendation or vision before 504. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
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
    ...serviceConfiguration(env),
    callers: {
      authorityHost: env.AZURE_AUTHORITY_HOST,
      tenantId: env.AZURE_TENANT_ID,
      audiences: [env.GATEWAY_AUDIENCE, ...(env.GATEWAY_APP_ID ? [env.GATEWAY_APP_ID] : [])],
      rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    },
    clientAddresses: { limitPerMinute: env.ADDRESS_RATE_LIMIT_PER_MINUTE, trustedProxyHops: env.TRUSTED_PROXY_HOPS },
    requestTimeoutInMs: env.REQUEST_TIMEOUT_MS,
  };
});

export type GatewayConfig = ReturnType<typeof gatewayConfig>;
