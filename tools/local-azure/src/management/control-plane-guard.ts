import type { IncomingMessage } from 'node:http';
import type { AuditLog } from '../audit/audit-log.js';
import { principalNameOf, principalTypeOf, type Directory, type Principal } from '../entra/directory.js';
import { v1Issuer } from '../entra/token-issuer.js';
import { TokenRejectedError, type ResourceGuard } from '../guard/resource-guard.js';
import type { Authorizer } from '../rbac/authorizer.js';
import { ArmError } from './arm-error.js';

/** The audiences ARM accepts, in every spelling it accepts. */
export const managementAudiences = [
  'https://management.azure.com/',
  'https://management.azure.com',
  'https://management.core.windows.net/',
  'https://management.core.windows.net',
] as const;

/** An authenticated caller of the management API. */
export interface ArmCaller {
  principalId: string;
  /** `appid` of the token: the identity's client id, or the public client a user signed in with. */
  clientId: string;
  /** The directory's principal behind the token (undefined when it no longer exists). */
  principal?: Principal;
  /** How ARM names the caller in errors: a user's UPN, an application's client id. */
  displayName: string;
  principalType: 'User' | 'ServicePrincipal';
}

/** What a caller must be allowed: a control-plane action, or a data action (operator views of a data plane). */
export type AccessCheck =
  | { action: string; scope: string; onlyRoles?: readonly string[] }
  | { dataAction: string; scope: string };

/**
 * The front door of the management API, as ARM's: every request carries a bearer token for
 * `https://management.azure.com/` (or `management.core.windows.net`, with or without the trailing slash), verified
 * like any Entra token (signature, issuer, tenant, expiry), then each {@link AccessCheck} is decided by RBAC.
 * Refusals are ARM's: 401 `AuthenticationFailed` / `InvalidAuthenticationToken` /
 * `InvalidAuthenticationTokenAudience` / `InvalidAuthenticationTokenTenant` / `ExpiredAuthenticationToken` with a
 * `WWW-Authenticate` challenge, 403 `AuthorizationFailed` naming the principal, the action and the scope. Every
 * refusal and every decision is written to the authorization log (an allowed re-check of access already granted may opt out).
 */
export class ControlPlaneGuard {
  constructor(
    private readonly guard: ResourceGuard,
    private readonly authorizer: Authorizer,
    private readonly directory: Directory,
    private readonly log: AuditLog,
    /** The authority host (for the `WWW-Authenticate` challenge). */
    private readonly authority: () => string,
  ) {}

  /**
   * Verifies the request's bearer token for the management audience.
   *
   * @throws {ArmError} 401, after logging the refusal.
   */
  async authenticate(request: IncomingMessage, operation: string): Promise<ArmCaller> {
    const header = request.headers.authorization;
    if (!header) {
      throw this.unauthenticated(operation, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", "The authentication failed because of missing 'Authorization' header.");
    }
    if (!/^Bearer\s+\S+$/i.test(header)) {
      throw this.unauthenticated(
        operation,
        'AuthenticationFailedInvalidHeader',
        "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        "The authentication failed because the 'Authorization' header is not 'Bearer <token>'.",
      );
    }
    try {
      const caller = await this.guard.authenticate(header, managementAudiences);
      const principal = this.directory.findPrincipal(caller.principalId);
      return {
        principalId: caller.principalId,
        clientId: caller.clientId,
        ...(principal ? { principal } : {}),
        displayName: principal?.kind === 'user' ? principal.userPrincipalName : caller.clientId || caller.principalId,
        principalType: principal ? principalTypeOf(principal) : String(caller.claims.idtyp) === 'user' ? 'User' : 'ServicePrincipal',
      };
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      throw this.rejected(operation, error);
    }
  }

  /**
   * Decides every check in order (each decision logged, an allowed one unless `options.recordAllowed` is false) and
   * stops at the first denial.
   *
   * @throws {ArmError} 403 `AuthorizationFailed` naming the principal, the action and the scope.
   */
  authorize(caller: ArmCaller, checks: readonly AccessCheck[], operation: string, options: { recordAllowed?: boolean } = {}): void {
    const context = { resource: 'management', operation, clientId: caller.clientId, ...options };
    for (const check of checks) {
      const decision =
        'dataAction' in check
          ? this.authorizer.check(caller.principalId, check.dataAction, check.scope, context)
          : this.authorizer.checkAction(caller.principalId, check.action, check.scope, context, check.onlyRoles);
      if (decision.allowed) continue;
      const action = 'dataAction' in check ? check.dataAction : check.action;
      const onlyRoles = 'onlyRoles' in check && check.onlyRoles ? ` In the local Azure only the ${check.onlyRoles.join(' or ')} role grants it.` : '';
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${caller.displayName}' with object id '${caller.principalId}' does not have authorization to perform action '${action}' over scope '${check.scope}' or the scope is invalid. ` +
          `If access was recently granted, please refresh your credentials.${onlyRoles}`,
      );
    }
  }

  private rejected(operation: string, error: TokenRejectedError): ArmError {
    const claims = error.claims;
    const allowed = managementAudiences.map((a) => `'${a}'`).join(',');
    const [code, message] = ((): [string, string] => {
      switch (error.reason) {
        case 'missing':
          return ['AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing."];
        case 'wrong-audience':
          return [
            'InvalidAuthenticationTokenAudience',
            `The access token has been obtained for wrong audience or resource '${String(claims?.aud)}'. It should exactly match with one of the allowed audiences ${allowed}.`,
          ];
        case 'wrong-tenant':
        case 'wrong-issuer':
          return [
            'InvalidAuthenticationTokenTenant',
            `The access token is from the wrong issuer '${String(claims?.iss)}'. It must match the tenant '${v1Issuer(this.directory.tenantId)}' associated with this subscription. ` +
              `Please use the authority (URL) '${this.authority()}/${this.directory.tenantId}' to get the token.`,
          ];
        case 'expired': {
          const exp = typeof claims?.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : 'unknown';
          return ['ExpiredAuthenticationToken', `The access token expiry UTC time '${exp}' is earlier than current UTC time '${new Date().toISOString()}'.`];
        }
        default:
          return ['InvalidAuthenticationToken', 'The access token is invalid.'];
      }
    })();
    const principalId = typeof claims?.oid === 'string' ? claims.oid : '';
    return this.unauthenticated(operation, code, message, error.message, principalId);
  }

  private unauthenticated(operation: string, code: string, message: string, reason: string, principalId = ''): ArmError {
    const principal = principalId ? this.directory.findPrincipal(principalId) : undefined;
    this.log.recordAuthorization({
      resource: 'management',
      principalId,
      ...(principal ? { identity: principalNameOf(principal) } : {}),
      scope: `/subscriptions/${this.directory.subscriptionId}`,
      decision: 'denied',
      operation,
      reason: `${code}: ${reason}`,
    });
    const challenge = `Bearer authorization_uri="${this.authority()}/${this.directory.tenantId}", error="invalid_token", error_description="${reason.replace(/"/g, "'")}"`;
    return new ArmError(401, code, message, { 'www-authenticate': challenge });
  }
}
