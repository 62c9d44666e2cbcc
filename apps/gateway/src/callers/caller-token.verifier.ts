import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';

/** Options of {@link CallerTokenVerifier}. */
export interface CallerTokenVerifierOptions {
  /** Entra authority host. In Azure: `https://login.microsoftonline.com`; locally the local Azure's. */
  authorityHost: string;
  tenantId: string;
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
 * Verifies callers' Entra access tokens: signature against the tenant's JWKS (found through OIDC discovery,
 * cached, refetched for an unknown `kid` so key rollover just works), issuer (v1 or v2), audience and
 * expiry with Azure's five-minute skew.
 */
export class CallerTokenVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly issuers: string[];

  constructor(private readonly options: CallerTokenVerifierOptions) {
    this.issuers = [`https://sts.windows.net/${options.tenantId}/`, `https://login.microsoftonline.com/${options.tenantId}/v2.0`];
  }

  /** @throws {CallerTokenError} saying what is wrong with the token (for logs; callers see a generic 401). */
  async verify(authorization: string | undefined): Promise<Caller> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new CallerTokenError('no bearer token in the Authorization header');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.keySet(), {
        issuer: this.issuers,
        audience: [...this.options.audiences],
        algorithms: ['RS256'],
        clockTolerance: clockSkewSeconds,
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new CallerTokenError('the token has expired');
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw new CallerTokenError(`the token's "${error.claim}" claim is not accepted (${error.reason})`);
      if (error instanceof joseErrors.JOSEError) throw new CallerTokenError(`the token does not verify (${error.code})`);
      throw error;
    }
    if (payload.tid !== this.options.tenantId) throw new CallerTokenError('the token is from another tenant');
    return {
      principalId: String(payload.oid ?? payload.sub),
      clientId: String(payload.appid ?? payload.azp ?? ''),
      roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [],
    };
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (!this.jwks) {
      const discovery = `${this.options.authorityHost.replace(/\/+$/, '')}/${this.options.tenantId}/.well-known/openid-configuration`;
      const response = await fetch(discovery);
      if (!response.ok) throw new Error(`OIDC discovery at ${discovery} answered ${response.status}`);
      const { jwks_uri: jwksUri } = (await response.json()) as { jwks_uri: string };
      this.jwks = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 30_000, cacheMaxAge: 24 * 3600 * 1000 });
    }
    return this.jwks;
  }
}
