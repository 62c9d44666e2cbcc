import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
import type { ResolvedAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { AuthError, StartupAccessCheckError, TokenAcquisitionError, type TokenAcquisitionErrorCode } from '../errors.js';

/**
 * Failures of the platform's identity endpoint itself — down, silent, answering garbage or 5xx — which App Service's
 * endpoint shows in a container's first seconds and which clear by themselves, and throttling (429), which clears
 * once the host's processes ask less often (several instances starting at once on one host). Every other failure (identity not
 * assigned, audience not registered, a refused request) is a configuration error that no wait will fix.
 */
const transientCodes: ReadonlySet<TokenAcquisitionErrorCode> = new Set([
  'IdentityEndpointUnreachable',
  'IdentityEndpointTimeout',
  'IdentityEndpointInvalidResponse',
  'IdentityEndpointError',
  'IdentityEndpointThrottled',
]);

/**
 * Acquires a token for every declared audience while the app initialises (Nest awaits `onModuleInit`
 * before `app.init()`/`listen()` resolve), so a service never reports ready without its tokens.
 * Audiences are checked in parallel; the whole check is bounded by `startupTimeoutInMs`.
 *
 * Rules:
 * 1. Every audience got its token → the app starts, ready.
 * 2. An audience failed for a configuration reason (identity not assigned, audience not registered, request
 *    refused) → the app does not start: {@link StartupAccessCheckError} lists every failure with its diagnostic.
 * 3. Every failure is the identity endpoint's own (unreachable, silent, garbage, 5xx, throttled) → the app starts anyway and is
 *    **not ready**: the failures are logged, the declared audiences are retried in the background, and health reports
 *    them down until their tokens are held. The service recovers by itself when the endpoint does — no restart.
 *
 * @throws {StartupAccessCheckError} per rule 2.
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
      if (failures.some((failure) => !transientCodes.has(failure.code))) {
        this.identity.close();
        throw new StartupAccessCheckError(failures);
      }
      if (failures.length) {
        logger.warn(
          `Startup access check: the identity endpoint is failing (${failures.map((f) => `${f.code} for ${f.context.resource}`).join('; ')}). ` +
            'Starting anyway, not ready: the tokens are retried in the background and health reports them down until held. ' +
            failures.map((f) => f.message).join(' '),
        );
        return;
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
