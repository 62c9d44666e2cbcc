import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { TenantSigningKeys, type TenantSigningKeysOptions } from './tenant-signing-keys.js';

/** Options of {@link CallerTokenVerifier}. */
export interface CallerTokenVerifierOptions extends TenantSigningKeysOptions {
  /** Audiences the gateway accepts: its app ID URI (`api://keyless-gateway`) and, optionally, its client id. */
  audiences: readonly string[];
}

/** A verified caller. */
export interface Caller {
  /** Object id of the caller's service principal: the key for rate limits and logs. */
  principalId: string;
  clientId: string;
  roles: readonly string[];
}

/** Why a caller token was refused; becomes a 401 problem. */
export class CallerTokenError extends Error {
  override readonly name = 'CallerTokenError';
}

const clockSkewSeconds = 300;

/**
 * Verifies callers' Entra access tokens: signature against the tenant's keys ({@link TenantSigningKeys}:
 * OIDC discovery, cached, failures backed off), issuer (v1 or v2), audience, and the token's lifetime with
 * Azure's five-minute skew: `exp` is required, `nbf` and `iat` are checked when present (a token issued in
 * the future is refused).
 */
export class CallerTokenVerifier {
  private readonly keys: TenantSigningKeys;
  private readonly issuers: string[];

  constructor(private readonly options: CallerTokenVerifierOptions) {
    this.keys = new TenantSigningKeys(options);
    this.issuers = [`https://sts.windows.net/${options.tenantId}/`, `https://login.microsoftonline.com/${options.tenantId}/v2.0`];
  }

  /**
   * @throws {CallerTokenError} saying what is wrong with the token (for logs; callers see a generic 401).
   * @throws {SigningKeysUnavailableError} while the tenant's keys cannot be fetched (callers see a 503).
   */
  async verify(authorization: string | undefined): Promise<Caller> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new CallerTokenError('no bearer token in the Authorization header');
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
      principalId: String(payload.oid ?? payload.sub),
      clientId: String(payload.appid ?? payload.azp ?? ''),
      roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [],
    };
  }
}
