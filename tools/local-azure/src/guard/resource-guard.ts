import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Authorizer, AuthorizationContext, AuthorizationDecision } from '../rbac/authorizer.js';
import type { Directory } from '../entra/directory.js';
import type { SigningKeys } from '../entra/signing-keys.js';
import { v1Issuer, v2Issuer } from '../entra/token-issuer.js';
import { trimChars } from '../util/trim-chars.js';

/** Why a token was refused. */
export type TokenRejectionReason =
  | 'missing'
  | 'malformed'
  | 'unknown-key'
  | 'bad-signature'
  | 'wrong-issuer'
  | 'wrong-tenant'
  | 'wrong-audience'
  | 'expired'
  | 'not-yet-valid';

/** A token the guard refused; `message` says what was wrong in words a developer can act on. */
export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';

  constructor(
    readonly reason: TokenRejectionReason,
    message: string,
    /** The token's claims, when its signature verified (wrong tenant, issuer or audience; expired). */
    readonly claims?: JWTPayload,
  ) {
    super(message);
  }
}

/** Who called, from a verified token. */
export interface Caller {
  principalId: string;
  clientId: string;
  tenantId: string;
  audience: string;
  roles: string[];
  expiresOn: Date;
  claims: JWTPayload;
}

export const guardDefaults = {
  /** Entra-protected Azure services accept tokens up to five minutes past `exp` / before `nbf`. */
  clockSkewSeconds: 300,
};

/**
 * The resource-server side of the local Entra, shared by every emulated data plane: verifies a bearer
 * token (signature against the tenant's JWKS, issuer, tenant, audience, `nbf`/`exp` with Azure's clock
 * skew), then checks a data action with RBAC. Each data plane turns a refusal into its own Azure error.
 */
export class ResourceGuard {
  private jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  private jwksVersion = -1;

  constructor(
    private readonly directory: Directory,
    private readonly keys: SigningKeys,
    private readonly authorizer: Authorizer,
  ) {}

  /**
   * Verifies `token` (a raw JWT, or an `Authorization` header value with `Bearer `) for one of
   * `audiences` (compared without trailing slashes, case-insensitively).
   *
   * @throws {TokenRejectedError} naming what is wrong with the token.
   */
  async authenticate(token: string | undefined, audiences: readonly string[]): Promise<Caller> {
    const jwt = token?.replace(/^Bearer\s+/i, '').trim();
    if (!jwt) throw new TokenRejectedError('missing', 'no bearer token was presented');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, this.keySet(), {
        algorithms: ['RS256'],
        issuer: [v1Issuer(this.directory.tenantId), v2Issuer(this.directory.tenantId)],
        clockTolerance: guardDefaults.clockSkewSeconds,
        requiredClaims: ['exp', 'aud', 'oid'],
      }));
    } catch (error) {
      throw this.rejection(error);
    }
    if (payload.tid !== this.directory.tenantId) {
      throw new TokenRejectedError('wrong-tenant', `token is for tenant ${String(payload.tid)}, not ${this.directory.tenantId}`, payload);
    }
    const audience = String(payload.aud);
    const accepted = audiences.map(normalizeAudience);
    if (!accepted.includes(normalizeAudience(audience))) {
      throw new TokenRejectedError('wrong-audience', `token audience "${audience}" is not one of: ${audiences.join(', ')}`, payload);
    }
    return {
      principalId: String(payload.oid),
      clientId: String(payload.appid ?? payload.azp ?? ''),
      tenantId: String(payload.tid),
      audience,
      roles: Array.isArray(payload.roles) ? payload.roles.map(String) : [],
      expiresOn: new Date((payload.exp ?? 0) * 1000),
      claims: payload,
    };
  }

  /** Checks `dataAction` on `scope` for `caller` (logged in the authorization log). */
  authorize(caller: Caller, dataAction: string, scope: string, context: Omit<AuthorizationContext, 'clientId'>): AuthorizationDecision {
    return this.authorizer.check(caller.principalId, dataAction, scope, { ...context, clientId: caller.clientId });
  }

  /**
   * Subscribes to changes of role assignments, so a data plane can re-check access it granted earlier
   * (open links, cached decisions). Called synchronously after each change, possibly inside a batch of
   * changes: defer the re-check. Returns an unsubscribe function.
   */
  onAccessChange(listener: () => void): () => void {
    return this.authorizer.onChange(listener);
  }

  /**
   * Picks up role assignment changes committed by another process (which bypass the listeners of
   * {@link onAccessChange}); the listeners run when there are any.
   */
  refreshAccess(): void {
    this.authorizer.refresh();
  }

  private keySet(): ReturnType<typeof createLocalJWKSet> {
    if (!this.jwks || this.jwksVersion !== this.keys.jwksVersion) {
      this.jwks = createLocalJWKSet(this.keys.jwks());
      this.jwksVersion = this.keys.jwksVersion;
    }
    return this.jwks;
  }

  private rejection(error: unknown): TokenRejectedError {
    if (error instanceof joseErrors.JWTExpired) return new TokenRejectedError('expired', `token expired at ${expiry(error)}`, error.payload);
    if (error instanceof joseErrors.JWKSNoMatchingKey) {
      return new TokenRejectedError('unknown-key', 'token is signed with a key (kid) the tenant does not publish');
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
      return new TokenRejectedError('bad-signature', 'token signature does not verify against the tenant keys');
    }
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      if (error.claim === 'iss') return new TokenRejectedError('wrong-issuer', `token issuer "${String(error.payload.iss)}" is not this tenant`, error.payload);
      if (error.claim === 'nbf') return new TokenRejectedError('not-yet-valid', 'token is not valid yet (nbf)');
      return new TokenRejectedError('malformed', `token claim "${error.claim}" is invalid: ${error.reason}`);
    }
    return new TokenRejectedError('malformed', `token is not a valid JWT (${(error as Error).message})`);
  }
}

function normalizeAudience(audience: string): string {
  return trimChars(audience, '/', 'end').toLowerCase();
}

function expiry(error: joseErrors.JWTExpired): string {
  return typeof error.payload.exp === 'number' ? new Date(error.payload.exp * 1000).toISOString() : 'unknown time';
}
