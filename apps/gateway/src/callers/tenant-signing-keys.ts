import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';

/** Options of {@link TenantSigningKeys}. */
export interface TenantSigningKeysOptions {
  /** Entra authority host. In Azure: `https://login.microsoftonline.com`; locally the local Azure's. */
  authorityHost: string;
  tenantId: string;
  /** After a failed fetch, nothing is fetched again for this long, doubling per failure. **Default**: 1000 … 60000 ms. */
  failureBackoff?: { initialDelayInMs?: number; maxDelayInMs?: number };
  /** A token signed with a key the set does not have refetches the set at most this often. **Default**: 30000 ms. */
  unknownKeyCooldownInMs?: number;
  /** The key set is refetched when it is older than this. **Default**: 24 h. */
  maxAgeInMs?: number;
  /** Each discovery or key-set request is abandoned after this long. **Default**: 5000 ms. */
  fetchTimeoutInMs?: number;
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

const defaults = {
  failureBackoff: { initialDelayInMs: 1_000, maxDelayInMs: 60_000 },
  unknownKeyCooldownInMs: 30_000,
  maxAgeInMs: 24 * 3600 * 1000,
  fetchTimeoutInMs: 5_000,
};

/** The tenant's keys could not be fetched, and are not fetched again before `retryAfterInMs`. */
export class SigningKeysUnavailableError extends Error {
  override readonly name = 'SigningKeysUnavailableError';

  constructor(
    message: string,
    /** Until the next attempt. */
    readonly retryAfterInMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The tenant's token signing keys, found through OIDC discovery: cached (refetched when older than
 * `maxAgeInMs`, or for an unknown `kid` at most every `unknownKeyCooldownInMs`, so key rollover just works).
 * Rules:
 * 1. Concurrent requests share one fetch.
 * 2. A failed discovery or key-set fetch is remembered: until its backoff (1 s, doubling to 60 s) passes,
 *    every caller fails at once with {@link SigningKeysUnavailableError} instead of fetching again, so a
 *    failing identity provider is not hammered by every request.
 * 3. The first success after failures clears the backoff.
 * 4. Keys past their age keep verifying while a refetch fails.
 */
export class TenantSigningKeys {
  private readonly settings: Required<Omit<TenantSigningKeysOptions, 'failureBackoff'>> & { failureBackoff: Required<NonNullable<TenantSigningKeysOptions['failureBackoff']>> };
  private keySet: { verify: LocalKeySet; fetchedAt: number } | undefined;
  private jwksUri: string | undefined;
  private failure: { message: string; cause: unknown; retryAt: number; delayInMs: number } | undefined;
  private fetching: Promise<void> | undefined;

  constructor(options: TenantSigningKeysOptions) {
    this.settings = {
      authorityHost: options.authorityHost,
      tenantId: options.tenantId,
      failureBackoff: { ...defaults.failureBackoff, ...options.failureBackoff },
      unknownKeyCooldownInMs: options.unknownKeyCooldownInMs ?? defaults.unknownKeyCooldownInMs,
      maxAgeInMs: options.maxAgeInMs ?? defaults.maxAgeInMs,
      fetchTimeoutInMs: options.fetchTimeoutInMs ?? defaults.fetchTimeoutInMs,
    };
  }

  /**
   * The key for a token's header, as `jwtVerify` asks for it.
   *
   * @throws {SigningKeysUnavailableError} while the keys cannot be fetched (rule 2).
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<LocalKeySet>>> => {
    if (!this.keySet) await this.refresh();
    // A key set past its age is still good while the identity provider is down.
    else if (Date.now() - this.keySet.fetchedAt > this.settings.maxAgeInMs) await this.refresh().catch(() => undefined);
    try {
      return await this.keySet!.verify(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || Date.now() - this.keySet!.fetchedAt < this.settings.unknownKeyCooldownInMs) throw error;
      await this.refresh();
      return this.keySet!.verify(header, token);
    }
  };

  private refresh(): Promise<void> {
    const failure = this.failure;
    if (failure && Date.now() < failure.retryAt) {
      return Promise.reject(new SigningKeysUnavailableError(failure.message, failure.retryAt - Date.now(), { cause: failure.cause }));
    }
    this.fetching ??= this.fetchKeys().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetchKeys(): Promise<void> {
    try {
      this.jwksUri ??= await this.discover();
      const jwks = (await this.getJson(this.jwksUri, 'the key set')) as JSONWebKeySet;
      if (!Array.isArray(jwks?.keys)) throw new Error(`the key set at ${this.jwksUri} has no "keys"`);
      this.keySet = { verify: createLocalJWKSet(jwks), fetchedAt: Date.now() };
      this.failure = undefined;
    } catch (error) {
      const { initialDelayInMs, maxDelayInMs } = this.settings.failureBackoff;
      const delayInMs = this.failure ? Math.min(maxDelayInMs, this.failure.delayInMs * 2) : initialDelayInMs;
      const message = `the tenant's signing keys cannot be fetched (${(error as Error).message}); next attempt in ${delayInMs} ms`;
      this.failure = { message, cause: error, retryAt: Date.now() + delayInMs, delayInMs };
      throw new SigningKeysUnavailableError(message, delayInMs, { cause: error });
    }
  }

  private async discover(): Promise<string> {
    const url = `${this.settings.authorityHost.replace(/\/+$/, '')}/${this.settings.tenantId}/.well-known/openid-configuration`;
    const { jwks_uri: jwksUri } = (await this.getJson(url, 'OIDC discovery')) as { jwks_uri?: unknown };
    if (typeof jwksUri !== 'string') throw new Error(`OIDC discovery at ${url} names no jwks_uri`);
    return jwksUri;
  }

  private async getJson(url: string, what: string): Promise<unknown> {
    const response = await fetch(url, { signal: AbortSignal.timeout(this.settings.fetchTimeoutInMs), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`${what} at ${url} answered ${response.status}`);
    return response.json();
  }
}
