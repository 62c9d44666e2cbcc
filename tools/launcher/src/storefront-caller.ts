import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AuthModule, AzureIdentityService } from '@keyless/auth';

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
   * its `Retry-After` says. An abort of `init.signal` ends the request or that wait at once.
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    for (;;) {
      const response = await fetch(`${this.gatewayUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${await this.token()}`, ...(typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}), ...init.headers },
      });
      if (response.status !== 429) return response;
      await response.arrayBuffer();
      // The wait ends with the call's own signal, as the request would.
      await sleep(Number(response.headers.get('retry-after') ?? 1) * 1000, undefined, init.signal ? { signal: init.signal } : {}).catch((error: unknown) => {
        init.signal?.throwIfAborted();
        throw error;
      });
    }
  }

  close(): Promise<void> {
    return this.context.close();
  }
}
