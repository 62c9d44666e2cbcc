import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
import type { ResolvedAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { AuthError, StartupAccessCheckError, TokenAcquisitionError } from '../errors.js';

/**
 * Acquires a token for every declared audience while the app initialises (Nest awaits `onModuleInit`
 * before `app.init()`/`listen()` resolve), so a service never reports ready without its tokens.
 * Audiences are checked in parallel; the whole check is bounded by `startupTimeoutInMs`.
 *
 * @throws {StartupAccessCheckError} listing each failed audience with its diagnostic.
 */
@Injectable()
export class StartupAccessCheck implements OnModuleInit {
  constructor(
    @Inject(RESOLVED_AUTH_OPTIONS) private readonly options: ResolvedAuthOptions,
    @Inject(AzureIdentityService) private readonly identity: AzureIdentityService,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.options.startupAccessCheck || this.options.audiences.length === 0) return;
    const logger = this.options.logger ?? new Logger('Auth');
    const started = Date.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.startupTimeoutInMs);
    try {
      const results = await Promise.allSettled(this.options.audiences.map((audience) => this.identity.getToken(audience.key, { abortSignal: abort.signal })));
      const failures = results.flatMap((result, i): TokenAcquisitionError[] => {
        if (result.status === 'fulfilled') return [];
        const audience = this.options.audiences[i]!;
        return [this.asAcquisitionError(result.reason, audience.resource)];
      });
      if (failures.length) {
        this.identity.close();
        throw new StartupAccessCheckError(failures);
      }
      logger.log(
        `Startup access check passed in ${Date.now() - started} ms: tokens held for ${this.options.audiences.map((a) => a.key).join(', ')} ` +
          `(${this.identity.identity.mode}${this.identity.identity.clientId ? `, client id ${this.identity.identity.clientId}` : ''}).`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private asAcquisitionError(reason: unknown, resource: string): TokenAcquisitionError {
    if (reason instanceof TokenAcquisitionError) return reason;
    const { mode, clientId, endpoint } = this.identity.identity;
    const context = { mode, ...(clientId ? { clientId } : {}), resource, ...(endpoint ? { endpoint } : {}) };
    if (reason instanceof AuthError) return new TokenAcquisitionError('TokenRequestFailed', reason.message, context, { cause: reason });
    // The abort signal fired: the startup budget ran out while a request was still pending.
    return new TokenAcquisitionError(
      'IdentityEndpointTimeout',
      `No token for ${resource} (identity ${clientId ?? mode}) within the startup budget of ${this.options.startupTimeoutInMs} ms` +
        `${endpoint ? ` from identity endpoint ${endpoint}` : ''}.`,
      context,
      { cause: reason },
    );
  }
}
