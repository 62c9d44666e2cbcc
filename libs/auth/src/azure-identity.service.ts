import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { Inject, Injectable, Logger, type LoggerService, type OnModuleDestroy } from '@nestjs/common';
import { resolveAudience, type Audience, type AudienceName } from './audiences.js';
import { RESOLVED_AUTH_OPTIONS } from './auth.module-definition.js';
import type { ResolvedAuthOptions } from './auth-options.js';
import { AuthConfigurationError, type CredentialMode } from './errors.js';
import { createIdentityBinding, type IdentityBinding } from './identity/identity-credential.js';
import { AuthMetrics } from './observability/auth.metrics.js';
import type { TokenClaims } from './tokens/token-claims.js';
import { TokenCache, type AudienceSlot, type AudienceTokenStatus } from './tokens/token-cache.js';

/** A token provider for one audience, in the shape `AzureOpenAI`'s `azureADTokenProvider` takes. */
export type BearerTokenProvider = () => Promise<string>;

/** Who the process authenticates as. */
export interface IdentitySummary {
  mode: CredentialMode;
  /** Client id of the user-assigned identity (in developer modes: the one used when deployed). */
  clientId?: string;
  /** The identity endpoint the SDK called last (managed-identity mode, after the first request). */
  endpoint?: string;
}

/**
 * The process's one credential: the SDK credential bound to the user-assigned identity (or, in an
 * explicitly chosen developer mode, the developer's login), with a token cache per audience in front.
 * Every Azure client gets its tokens from here, through {@link credential} or {@link tokenProvider}.
 */
@Injectable()
export class AzureIdentityService implements OnModuleDestroy {
  /** A `TokenCredential` for Azure SDK clients, served from the cache. */
  readonly credential: TokenCredential;
  private readonly binding: IdentityBinding;
  private readonly cache: TokenCache;
  private readonly logger: LoggerService;

  constructor(@Inject(RESOLVED_AUTH_OPTIONS) readonly options: ResolvedAuthOptions) {
    this.logger = options.logger ?? new Logger('Auth');
    this.binding = createIdentityBinding(options, (existing) =>
      this.logger.warn(
        `A second identity in one process (already bound: ${existing}). MSAL shares its identity endpoint, HTTP client and ` +
          'token cache across credentials; a Keyless service has exactly one identity.',
      ),
    );
    const metrics = new AuthMetrics(options.meterProvider, () =>
      this.cache.status().flatMap((s) => (s.expiresOn ? [{ audience: s.audience, expiresOn: s.expiresOn.getTime() }] : [])),
    );
    this.cache = new TokenCache(this.binding, options, metrics, this.logger);
    // Declared audiences first, in their order: status and health list them that way.
    for (const audience of options.audiences) this.cache.slot(audience, true);
    const slotsByScope = new Map<string, AudienceSlot>();
    this.credential = {
      getToken: (scopes: string | string[], getTokenOptions?: GetTokenOptions): Promise<AccessToken> => {
        const list = Array.isArray(scopes) ? scopes : [scopes];
        if (list.length !== 1) {
          return Promise.reject(
            new AuthConfigurationError('AudienceUnknown', `A token is for exactly one audience; got ${list.length} scopes (${list.join(', ')}).`),
          );
        }
        const scope = list[0]!;
        let slot = slotsByScope.get(scope);
        if (!slot) {
          try {
            slot = this.cache.slot(resolveAudience(scope));
          } catch (error) {
            return Promise.reject(error as Error);
          }
          slotsByScope.set(scope, slot);
        }
        return this.cache.getToken(slot, getTokenOptions?.abortSignal as AbortSignal | undefined);
      },
    };
    this.logger.log(`Azure credential: ${this.binding.describe()}.`);
  }

  /** Mode, client id and identity endpoint, for logs and health. */
  get identity(): IdentitySummary {
    const endpoint = this.binding.endpoint();
    return { mode: this.binding.mode, ...(this.binding.clientId ? { clientId: this.binding.clientId } : {}), ...(endpoint ? { endpoint } : {}) };
  }

  /**
   * A bearer-token provider for `audience` (`() => Promise<string>`), e.g. for `AzureOpenAI`'s
   * `azureADTokenProvider`. A warm lookup costs one resolved promise.
   *
   * @throws {AuthConfigurationError} `AudienceUnknown` for an audience of no accepted form.
   * @example
   * const provider = identity.tokenProvider('api://keyless-gateway');
   * await fetch(url, { headers: { authorization: `Bearer ${await provider()}` } });
   */
  tokenProvider(audience: AudienceName): BearerTokenProvider {
    const slot = this.cache.slot(resolveAudience(audience));
    const cache = this.cache;
    return () => {
      const held = cache.servable(slot);
      return held !== undefined ? Promise.resolve(held.token) : cache.getToken(slot).then((token) => token.token);
    };
  }

  /**
   * An access token for `audience` (cached; see {@link tokenProvider}).
   *
   * @throws {TokenAcquisitionError} when no valid token is held and the request fails.
   */
  getToken(audience: AudienceName, options?: { abortSignal?: AbortSignal }): Promise<AccessToken> {
    return this.cache.getToken(this.cache.slot(resolveAudience(audience)), options?.abortSignal);
  }

  /** What the cache holds per audience used so far. */
  tokenStatus(): AudienceTokenStatus[] {
    return this.cache.status();
  }

  /** Claims of the token held for `audience` (the principal that calls carry), if one was acquired. */
  claimsFor(audience: Audience): TokenClaims | undefined {
    return this.cache.claims(audience);
  }

  /** Stops background refreshes (called by Nest on shutdown). */
  close(): void {
    this.cache.close();
  }

  onModuleDestroy(): void {
    this.close();
  }
}
