import { decodeJwt } from 'jose';
import type { DatabasePrincipal, DataPlaneContext } from '../data-plane.js';
import { TokenRejectedError, type Caller } from '../guard/resource-guard.js';
import { ossrdbmsResource, postgresErrors } from './postgres-errors.js';
import type { ErrorFields } from './wire-protocol.js';

/** One login attempt: what the client sent in its start-up packet and password message. */
export interface LoginAttempt {
  user: string;
  database: string;
  password: string;
  /** The client's address and port. */
  client: string;
}

/** The outcome of a login: the principal signed in as, or the error to send and why (for the logs). */
export type LoginResult =
  | { ok: true; principal: DatabasePrincipal; caller: Caller }
  | { ok: false; error: ErrorFields; reason: string; fix?: string; caller?: Caller };

const compactJwt = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/**
 * Microsoft Entra authentication as Azure Database for PostgreSQL flexible server does it: the password is an
 * access token for `https://ossrdbms-aad.database.windows.net`, verified like every local resource's token
 * (signature, issuer, tenant, audience, expiry); the user name must be a database principal and the token's
 * `oid` that principal's object id. Password authentication is disabled (`passwordAuth: Disabled`). Every
 * attempt lands in the sign-in log; every attempt with a valid token also in the authorization log.
 */
export class EntraLogin {
  constructor(
    private readonly context: DataPlaneContext,
    /** The database the server serves. */
    private readonly database: string,
  ) {}

  async verify(attempt: LoginAttempt): Promise<LoginResult> {
    const result = await this.check(attempt);
    const caller = result.caller;
    this.context.auditLog.recordSignIn({
      endpoint: 'postgres',
      client: attempt.client,
      user: attempt.user,
      database: attempt.database,
      ...(caller ? this.who(caller) : {}),
      resource: ossrdbmsResource,
      outcome: result.ok ? 'success' : 'failure',
      ...(result.ok ? {} : { reason: result.reason }),
    });
    if (!result.ok) {
      this.context.log(
        `postgres: login refused for user "${attempt.user}" (database "${attempt.database}") from ${attempt.client}: ${result.reason}${result.fix ? `. Fix: ${result.fix}` : ''}`,
      );
    }
    return result;
  }

  /** Records a login refused before any password was asked (no TLS, too many connections). */
  refuseEarly(attempt: Omit<LoginAttempt, 'password'>, reason: string): void {
    this.context.auditLog.recordSignIn({ endpoint: 'postgres', client: attempt.client, user: attempt.user, database: attempt.database, resource: ossrdbmsResource, outcome: 'failure', reason });
    this.context.log(`postgres: login refused for user "${attempt.user}" (database "${attempt.database}") from ${attempt.client}: ${reason}`);
  }

  private async check(attempt: LoginAttempt): Promise<LoginResult> {
    const { user, password } = attempt;
    if (!password) return { ok: false, error: postgresErrors.emptyPassword(), reason: 'empty password' };
    if (!compactJwt.test(password)) {
      if (password.includes('eyJ')) {
        return { ok: false, error: postgresErrors.tokenInvalidFormat(), reason: 'the password is not a compact JWT (extra characters around the token?)', fix: 'pass the access token exactly as issued' };
      }
      return {
        ok: false,
        error: postgresErrors.passwordAuthenticationFailed(user),
        reason: 'password authentication is disabled (passwordAuth: Disabled); the password must be a Microsoft Entra access token',
        fix: `use a token for ${ossrdbmsResource}/.default as the password`,
      };
    }
    let caller: Caller;
    try {
      caller = await this.context.guard.authenticate(password, [ossrdbmsResource]);
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      return this.tokenRefused(error, password, user);
    }
    const principals = this.context.databasePrincipals().filter((p) => p.resource === 'postgres');
    const principal = principals.find((p) => p.name === user);
    const decision = (allowed: boolean, reason: string): void =>
      this.context.auditLog.recordAuthorization({
        resource: 'postgres',
        ...this.who(caller),
        dataAction: 'login',
        scope: `${this.context.directory.resourceId('postgres')}/databases/${attempt.database}`,
        decision: allowed ? 'allowed' : 'denied',
        ...(principal ? { role: `database principal "${principal.name}"${principal.administrator ? ' (administrator)' : ''}` } : {}),
        operation: `login user=${user} database=${attempt.database} from ${attempt.client}: ${reason}`,
      });
    if (!principal) {
      const reason = `no database principal is named "${user}" (declared: ${principals.map((p) => p.name).join(', ') || 'none'})`;
      decision(false, reason);
      return {
        ok: false,
        error: postgresErrors.passwordAuthenticationFailed(user),
        reason,
        fix: `declare the identity under databasePrincipals in infra/access.json (in Azure: the server's Entra administrator, or pgaadauth_create_principal)`,
        caller,
      };
    }
    if (principal.principalId !== caller.principalId) {
      const holder = this.context.directory.findIdentity(caller.principalId)?.name ?? 'an identity without a principal';
      const reason = `the token's oid ${caller.principalId} (${holder}) is not the object id of principal "${user}" (${principal.principalId})`;
      decision(false, reason);
      return { ok: false, error: postgresErrors.passwordAuthenticationFailed(user), reason, fix: 'sign in as the role named after the identity whose token is the password (PGUSER)', caller };
    }
    decision(true, 'the token is the principal\'s');
    if (attempt.database !== this.database) {
      return { ok: false, error: postgresErrors.databaseDoesNotExist(attempt.database), reason: `database "${attempt.database}" does not exist (served: ${this.database})`, fix: `PGDATABASE=${this.database}`, caller };
    }
    return { ok: true, principal, caller };
  }

  private tokenRefused(error: TokenRejectedError, token: string, user: string): LoginResult {
    const reason = `${error.message} (${error.reason})`;
    if (error.reason === 'expired') return { ok: false, error: postgresErrors.tokenExpired(), reason, fix: 'get a new token for each new connection (a pg Pool takes a password callback)' };
    if (error.reason === 'wrong-audience') return { ok: false, error: postgresErrors.tokenWrongAudience(), reason, fix: `request the token for ${ossrdbmsResource}/.default` };
    if (error.reason === 'malformed' && hasNoOid(token)) return { ok: false, error: postgresErrors.tokenWithoutOid(), reason: 'the token has no oid claim' };
    return { ok: false, error: postgresErrors.passwordAuthenticationFailed(user), reason };
  }

  private who(caller: Caller): { principalId: string; clientId?: string; identity?: string } {
    const identity = this.context.directory.findIdentity(caller.principalId);
    return { principalId: caller.principalId, ...(caller.clientId ? { clientId: caller.clientId } : {}), ...(identity ? { identity: identity.name } : {}) };
  }
}

function hasNoOid(token: string): boolean {
  try {
    return typeof decodeJwt(token).oid !== 'string';
  } catch {
    return false;
  }
}
