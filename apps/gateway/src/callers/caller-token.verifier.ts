import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { TenantSigningKeys, type TenantSigningKeysOptions } from './tenant-signing-keys.js';

/** Options of {@link CallerTokenVerifier}. */
export interface CallerTokenVerifierOptions extends TenantSigningKeysOptions {
  /** Audiences the gateway accepts: its app ID URI (`api://keyless-gateway`) and, optionally, its client id. */
  audiences: readonly string[];
  /**
   * Verified tokens remembered at once (a caller sends the same token for up to an hour, so its signature is
   * checked once, not on every request). The least recently used is forgotten first. 0 turns the cache off.
   * **Default**: 1000.
   */
  maxCachedTokens?: number;
  /** A remembered token is verified again (signature included) after this long at the latest. **Default**: 600000 ms. */
  cachedTokenMaxAgeInMs?: number;
}

const defaults = { maxCachedTokens: 1000, cachedTokenMaxAgeInMs: 10 * 60_000 };

/** A verified caller. */
export interface Caller {
  /** Object id of the caller's service principal: the key for rate limits and logs. */
  principalId: string;
  clientId: string;
  roles: readonly string[];
}

/**
 * Why a caller token was refused; becomes a 401 problem. `code`:
 * - `missing-token`: the request carries no bearer token at all;
 * - `invalid-token`: it carries one that is not accepted (signature, issuer, audience, lifetime, tenant).
 */
export class CallerTokenError extends Error {
  override readonly name = 'CallerTokenError';

  constructor(
    message: string,
    readonly code: 'missing-token' | 'invalid-token' = 'invalid-token',
  ) {
    super(message);
  }
}

const clockSkewSeconds = 300;

/**
 * Verifies callers' Entra access tokens: signature against the tenant's keys ({@link TenantSigningKeys}:
 * OIDC discovery, cached, failures backed off), issuer (v1 or v2), audience, and the token's lifetime with
 * Azure's five-minute skew: `exp` is required, `nbf` and `iat` are checked when present (a token issued in
 * the future is refused). A verified token is remembered (`maxCachedTokens`, `cachedTokenMaxAgeInMs`) until it
 * expires, so a caller's repeated requests cost a map lookup instead of a signature check; a refused token is
 * never remembered.
 */
export class CallerTokenVerifier {
  private readonly keys: TenantSigningKeys;
  private readonly issuers: string[];
  /** Verified tokens (the whole compact JWS as key: a token that differs in any byte is verified anew). */
  private readonly verified = new Map<string, { caller: Caller; validUntil: number }>();
  private readonly maxCachedTokens: number;
  private readonly cachedTokenMaxAgeInMs: number;

  constructor(private readonly options: CallerTokenVerifierOptions) {
    this.keys = new TenantSigningKeys(options);
    this.issuers = [`https://sts.windows.net/${options.tenantId}/`, `https://login.microsoftonline.com/${options.tenantId}/v2.0`];
    this.maxCachedTokens = options.maxCachedTokens ?? defaults.maxCachedTokens;
    this.cachedTokenMaxAgeInMs = options.cachedTokenMaxAgeInMs ?? defaults.cachedTokenMaxAgeInMs;
  }

  /**
   * @throws {CallerTokenError} saying what is wrong with the token (for logs; callers see a generic 401).
   * @throws {SigningKeysUnavailableError} while the tenant's keys cannot be fetched (callers see a 503).
   */
  async verify(authorization: string | undefined): Promise<Caller> {
    // The server joins repeated headers with a comma (`joinDuplicateHeaders`), which no bearer token contains.
    if (authorization?.includes(',')) throw new CallerTokenError('the request has more than one Authorization header (or a comma in it): send one bearer token');
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new CallerTokenError('no bearer token in the Authorization header', 'missing-token');
    const now = Date.now();
    const known = this.verified.get(token);
    if (known) {
      this.verified.delete(token);
      // Past its expiry (with the skew) or its time in the cache: verified again below, and refused if expired.
      if (now <= known.validUntil) {
        this.verified.set(token, known);
        return known.caller;
      }
    }
    const { caller, expiresAtInSeconds } = await this.verifyToken(token);
    if (this.maxCachedTokens > 0) {
      // Until its exp (with the skew) or cachedTokenMaxAgeInMs, whichever comes first. nbf and iat need no
      // second look: a token valid now stays valid on those until it expires.
      this.verified.set(token, { caller, validUntil: Math.min((expiresAtInSeconds + clockSkewSeconds) * 1000, now + this.cachedTokenMaxAgeInMs) });
      if (this.verified.size > this.maxCachedTokens) this.verified.delete(this.verified.keys().next().value!);
    }
    return caller;
  }

  private async verifyToken(token: string): Promise<{ caller: Caller; expiresAtInSeconds: number }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.getKey, {
        issuer: this.issuers,
        audience: [...this.options.audiences],
        algorithms: ['RS256'],
        clockTolerance: clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new CallerTokenError('the token has expired');
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw new CallerTokenError(`the token's "${error.claim}" claim is not accepted (${error.reason})`);
      if (error instanceof joseErrors.JOSEError) throw new CallerTokenError(`the token does not verify (${error.code})`);
      throw error;
    }
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + clockSkewSeconds) throw new CallerTokenError('the token\'s "iat" claim is in the future');
    if (payload.tid !== this.options.tenantId) throw new CallerTokenError('the token is from another tenant');
    return {
      caller: {
        principalId: String(payload.oid ?? payload.sub),
        clientId: String(payload.appid ?? payload.azp ?? ''),
        roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [],
      },
      // requiredClaims makes jose refuse a token without a numeric exp.
      expiresAtInSeconds: payload.exp!,
    };
  }
}
