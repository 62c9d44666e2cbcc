import { applyDecorators, Injectable, Logger, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { GatewayAppRole } from '@keyless/contracts';
import { publicRouteKey } from '@keyless/observability';
import { ApiAppRoles } from '../http/openapi.js';
import { ProblemException } from '../http/problem-details.js';
import { CallerTokenError, CallerTokenVerifier, type Caller } from './caller-token.verifier.js';
import { SigningKeysUnavailableError } from './tenant-signing-keys.js';

/** App roles (of the gateway's app registration) a route requires; the caller needs one of them. Documented in the OpenAPI document too. */
export const RequireRoles = (...roles: GatewayAppRole[]) => applyDecorators(SetMetadata(requiredRolesKey, roles), ApiAppRoles(roles));
const requiredRolesKey = 'keyless:required-roles';

/** The request with its verified caller. */
export type AuthenticatedRequest = Request & { caller?: Caller };

/**
 * Every route needs an Entra access token for the gateway's app ID URI (401 otherwise), and the app role
 * the route names (403 otherwise). What exactly was wrong with a token goes to the log, not the response.
 * While the tenant's signing keys cannot be fetched, callers get 503 with Retry-After.
 */
@Injectable()
export class CallerAuthGuard implements CanActivate {
  private readonly log = new Logger('Callers');

  constructor(
    private readonly verifier: CallerTokenVerifier,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(publicRouteKey, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    try {
      request.caller = await this.verifier.verify(request.headers.authorization);
    } catch (error) {
      if (error instanceof SigningKeysUnavailableError) {
        this.log.warn(`503 for ${request.method} ${request.originalUrl}: ${error.message}`);
        throw new ProblemException(503, 'authentication-unavailable', 'Caller tokens cannot be verified right now; try again shortly.', {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterInMs / 1000))) },
        });
      }
      if (!(error instanceof CallerTokenError)) throw error;
      this.log.warn(`401 for ${request.method} ${request.originalUrl}: ${error.message}`);
      throw new ProblemException(401, 'unauthenticated', 'A valid Entra access token for the gateway is required (Authorization: Bearer …).', {
        // RFC 6750 §3.1: a request without any credentials gets the bare challenge, one with a refused token the error code.
        headers: { 'www-authenticate': error.code === 'missing-token' ? 'Bearer' : 'Bearer error="invalid_token"' },
      });
    }
    const required = this.reflector.getAllAndOverride<string[]>(requiredRolesKey, targets) ?? [];
    if (required.length && !required.some((role) => request.caller!.roles.includes(role))) {
      this.log.warn(`403 for ${request.method} ${request.originalUrl}: caller ${request.caller!.principalId} lacks ${required.join(' or ')}`);
      throw new ProblemException(403, 'forbidden', `This operation needs the app role ${required.join(' or ')} on the gateway's app registration.`);
    }
    return true;
  }
}
