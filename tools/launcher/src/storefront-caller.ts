import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthModule, AzureIdentityService } from '@keyless/auth';

/** How often a rate-limited call is tried, and the longest wait between tries, whatever `Retry-After` says. */
const maxRateLimitedTries = 20;
const maxRateLimitWaitInSeconds = 30;

/**
 * Calls the gateway as the storefront does: a process on the `storefront` host whose managed identity
 * holds the gateway's app roles, getting its tokens through `@keyless/auth` (ManagedIdentityCredential),
 * the same code a real caller in Azure would run. `env` is the storefront host's env file.
 */
export class StorefrontCaller {
  private constructor(
    private readonly context: INestApplicationContext,
    private readonly tokenProvider: () => Promise<string>,
    readonly gatewayUrl: string,
  ) {}

  static async create(env: Record<string, string>, gatewayUrl: string): Promise<StorefrontCaller> {
    // The SDK reads IDENTITY_ENDPOINT/IDENTITY_HEADER from the process environment (the platform contract).
    for (const key of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER']) process.env[key] = env[key];
    const audience = env.GATEWAY_AUDIENCE ?? 'api://keyless-gateway';
    const context = await NestFactory.createApplicationContext(
      AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: [audience], startupAccessCheck: true }),
      { logger: ['error'] },
    );
    const identity = context.get(AzureIdentityService);
    return new StorefrontCaller(context, identity.tokenProvider(audience), gatewayUrl);
  }

  /** A fresh-enough access token for the gateway. */
  token(): Promise<string> {
    return this.tokenProvider();
  }

  /**
   * Calls the gateway with the storefront's token (a string body is sent as JSON); a 429 is waited out as
   * its `Retry-After` says (at most 30 s a wait, 1 s when it says nothing readable), up to 20 times, after which the
   * 429 is the answer. An abort of `init.signal` ends the request or that wait at once.
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    for (let tries = 1; ; tries++) {
      const response = await fetch(`${this.gatewayUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${await this.token()}`, ...(typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}), ...init.headers },
      });
      if (response.status !== 429 || tries >= maxRateLimitedTries) return response;
      await response.arrayBuffer();
      const waitInMs = Math.min(retryAfterInMs(response.headers.get('retry-after')) ?? 1000, maxRateLimitWaitInSeconds * 1000);
      // The wait ends with the call's own signal, as the request would.
      await sleep(waitInMs, undefined, init.signal ? { signal: init.signal } : {}).catch((error: unknown) => {
        init.signal?.throwIfAborted();
        throw error;
      });
    }
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterInMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
