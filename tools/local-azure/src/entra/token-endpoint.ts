import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditLog } from '../audit/audit-log.js';
import { BodyTooLargeError, noStoreHeaders, readBody, requestId, sendJson } from '../http/http-kit.js';
import { newGuid } from '../util/ids.js';
import type { Directory, DirectoryUser } from './directory.js';
import type { HomeCredential } from './home-credential.js';
import type { TokenIssuer } from './token-issuer.js';
import type { UserSessions } from './user-sessions.js';

/**
 * Public clients the local tenant knows (first-party applications in every Entra tenant; their ids are public).
 * Users sign in through one of them, and their tokens carry its id as `appid`.
 */
export const publicClients = {
  /** The Azure CLI; the local Azure's CLI signs in as it. */
  azureCli: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
  /** Azure PowerShell. */
  azurePowerShell: '1950a258-227b-4e31-a9cf-717495945fc2',
} as const;

/** Scopes that ask for OpenID Connect extras, not for a resource. */
const oidcScopes = new Set(['openid', 'profile', 'email', 'offline_access']);

const defaults = { maxBodyBytes: 16 * 1024 };

/** An Entra error (`AADSTS…`) with the status and `error` code the real token endpoint sends. */
class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    message: string,
    readonly user?: DirectoryUser,
  ) {
    super(message);
  }
}

interface TokenRequestContext {
  grantType: string;
  clientId?: string;
  resource?: string;
  user?: DirectoryUser;
}

/**
 * The tenant's OAuth 2.0 token endpoint (`POST /{tenant}/oauth2/v2.0/token`, and v1 `/oauth2/token` with
 * `resource=`), for the tenant's **users**. Managed identities get their tokens from their hosts' identity
 * endpoints, and the tenant holds no client secrets, so `client_credentials` is refused.
 *
 * Grants:
 * - `password` (resource-owner password, as MSAL and `UsernamePasswordCredential` send it): `username` is the
 *   user's UPN and `password` the home credential (see {@link HomeCredential}), proof that the caller can read
 *   the local Azure's home. It starts a session: the answer carries a refresh token (v2: with `offline_access`).
 * - `refresh_token`: a session's refresh token buys an access token for any resource (Entra's multi-resource
 *   refresh token); the same refresh token is returned.
 * - `authorization_code`: a one-time code a signed-in user obtained for another client (the portal's sign-in
 *   link), redeemed once within 5 minutes; it starts that client's own session.
 *
 * Answers follow Entra: v2 `{token_type, scope, expires_in, ext_expires_in, access_token, refresh_token,
 * id_token, client_info}`; errors `{error, error_description: "AADSTS…", error_codes, timestamp, trace_id,
 * correlation_id}`. Every request lands in the sign-in log; secrets never do.
 */
export class TokenEndpoint {
  constructor(
    private readonly directory: Directory,
    private readonly issuer: TokenIssuer,
    private readonly sessions: UserSessions,
    private readonly credential: HomeCredential,
    private readonly log: AuditLog,
    /** Whether a resource (token audience) exists in the tenant. */
    private readonly knownResource: (resource: string) => boolean,
  ) {}

  async handle(request: IncomingMessage, response: ServerResponse, version: 'v1' | 'v2'): Promise<void> {
    const correlationId = requestId(request);
    const context: TokenRequestContext = { grantType: '' };
    try {
      const form = await this.readForm(request);
      context.grantType = checkGrantType(form.get('grant_type') ?? '');
      const clientId = this.clientOf(form);
      context.clientId = clientId;
      const resource = this.resourceOf(form, version);
      context.resource = resource;
      const { user, refreshToken } = await this.grant(form, clientId, context);
      context.user = user;
      const token = await this.issuer.issueForUser(user, resource, clientId);
      const wantsRefreshToken = version === 'v1' || scopesOf(form).includes('offline_access');
      const wantsIdToken = version === 'v1' || scopesOf(form).includes('openid');
      const lifetime = token.expiresOn - token.issuedAt;
      this.record(context, 'success', correlationId);
      sendJson(
        response,
        200,
        version === 'v2'
          ? {
              token_type: 'Bearer',
              scope: scopesOf(form).join(' '),
              expires_in: lifetime,
              ext_expires_in: lifetime,
              access_token: token.accessToken,
              ...(wantsRefreshToken ? { refresh_token: refreshToken } : {}),
              ...(wantsIdToken ? { id_token: await this.issuer.idToken(user, clientId) } : {}),
              ...(form.get('client_info') === '1' ? { client_info: clientInfo(user.principalId, this.directory.tenantId) } : {}),
            }
          : {
              token_type: 'Bearer',
              scope: 'user_impersonation',
              expires_in: String(lifetime),
              ext_expires_in: String(lifetime),
              expires_on: String(token.expiresOn),
              not_before: String(token.notBefore),
              resource,
              access_token: token.accessToken,
              refresh_token: refreshToken,
              id_token: await this.issuer.idToken(user, clientId),
            },
        noStoreHeaders,
      );
    } catch (error) {
      if (!(error instanceof TokenRequestError)) throw error;
      this.record({ ...context, ...(error.user ? { user: error.user } : {}) }, 'failure', correlationId, error.message);
      sendJson(response, error.status, {
        error: error.error,
        error_description: `AADSTS${error.aadsts}: ${error.message} Trace ID: ${newGuid()} Correlation ID: ${correlationId} Timestamp: ${new Date().toISOString()}`,
        error_codes: [error.aadsts],
        timestamp: new Date().toISOString(),
        trace_id: newGuid(),
        correlation_id: correlationId,
        error_uri: `https://login.microsoftonline.com/error?code=${error.aadsts}`,
      });
    }
  }

  private async grant(form: URLSearchParams, clientId: string, context: TokenRequestContext): Promise<{ user: DirectoryUser; refreshToken: string }> {
    switch (context.grantType) {
      case 'password': {
        const username = required(form, 'username');
        const password = required(form, 'password');
        const user = this.directory.findUser(username);
        if (!user || user.userPrincipalName.toLowerCase() !== username.trim().toLowerCase()) {
          throw new TokenRequestError(
            400,
            'invalid_grant',
            50034,
            `The user account ${username} does not exist in the ${this.directory.tenantId} directory. Users sign in with their UPN, <name>@${this.directory.domain}.`,
          );
        }
        if (!this.credential.matches(password)) {
          throw new TokenRequestError(
            400,
            'invalid_grant',
            50126,
            "Error validating credentials due to invalid username or password. The local tenant's users sign in with the local Azure's home credential (readable only by the local Azure's OS user), not a password.",
            user,
          );
        }
        return { user, refreshToken: this.sessions.start(user.principalId, clientId) };
      }
      case 'refresh_token': {
        const refreshToken = required(form, 'refresh_token');
        const session = this.sessions.redeemRefreshToken(refreshToken, clientId);
        const user = session && this.directory.findUser(session.userId);
        if (!user) {
          throw new TokenRequestError(
            400,
            'invalid_grant',
            70000,
            'Provided grant is invalid or malformed: the refresh token is unknown, expired, revoked, or was issued to another client. Sign in again.',
          );
        }
        return { user, refreshToken };
      }
      case 'authorization_code': {
        const code = required(form, 'code');
        const redirectUri = required(form, 'redirect_uri');
        const redeemed = this.sessions.redeemAuthorizationCode(code, clientId, redirectUri);
        if ('refused' in redeemed) {
          const [aadsts, message] = {
            unknown: [70000, 'Provided grant is invalid or malformed: the authorization code is not known.'],
            expired: [70008, 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.'],
            redeemed: [54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.'],
            'wrong-client': [70000, 'Provided grant is invalid or malformed: the authorization code was issued to another client.'],
            'wrong-redirect': [70000, 'Provided grant is invalid or malformed: the redirect_uri is not the one the authorization code was issued for.'],
          }[redeemed.refused] as [number, string];
          throw new TokenRequestError(400, 'invalid_grant', aadsts, message);
        }
        const user = this.directory.findUser(redeemed.userId);
        if (!user) throw new TokenRequestError(400, 'invalid_grant', 50034, `The user account of this code no longer exists in the ${this.directory.tenantId} directory.`);
        return { user, refreshToken: this.sessions.start(user.principalId, clientId) };
      }
      default:
        throw new Error(`unreachable: grant type ${context.grantType}`);
    }
  }

  private clientOf(form: URLSearchParams): string {
    const clientId = required(form, 'client_id').trim().toLowerCase();
    if (!Object.values(publicClients).includes(clientId as (typeof publicClients)[keyof typeof publicClients])) {
      throw new TokenRequestError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${this.directory.tenantId}'. The local tenant's users sign in through the Azure CLI (${publicClients.azureCli}) or Azure PowerShell (${publicClients.azurePowerShell}).`,
      );
    }
    return clientId;
  }

  /** The one resource asked for: v1 `resource=`, v2 the scope (`<resource>/.default`) besides OIDC scopes. */
  private resourceOf(form: URLSearchParams, version: 'v1' | 'v2'): string {
    let resource: string;
    if (version === 'v1') resource = required(form, 'resource');
    else {
      if (!form.get('scope')) throw new TokenRequestError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
      const resources = scopesOf(form).filter((scope) => !oidcScopes.has(scope));
      if (resources.length > 1) {
        throw new TokenRequestError(400, 'invalid_scope', 28000, 'Provided value for the input parameter scope is not valid because it contains more than one resource.');
      }
      if (resources.length === 0) throw new TokenRequestError(400, 'invalid_scope', 70011, "The provided value for the input parameter 'scope' names no resource (<resource>/.default).");
      resource = resources[0]!.replace(/\/(\.default|user_impersonation)$/, '');
    }
    if (!this.knownResource(resource)) {
      throw new TokenRequestError(
        400,
        'invalid_resource',
        500011,
        `The resource principal named ${resource} was not found in the tenant named ${this.directory.tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
      );
    }
    return resource;
  }

  private async readForm(request: IncomingMessage): Promise<URLSearchParams> {
    if (!String(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      throw new TokenRequestError(400, 'invalid_request', 900144, 'The request body must be application/x-www-form-urlencoded.');
    }
    try {
      return new URLSearchParams((await readBody(request, defaults.maxBodyBytes)).toString('utf8'));
    } catch (error) {
      if (error instanceof BodyTooLargeError) throw new TokenRequestError(400, 'invalid_request', 90014, `The request body is larger than ${defaults.maxBodyBytes} bytes.`);
      throw error;
    }
  }

  private record(context: TokenRequestContext, outcome: 'success' | 'failure', correlationId: string, reason?: string): void {
    this.log.recordSignIn({
      endpoint: 'token',
      ...(context.grantType ? { grantType: context.grantType } : {}),
      ...(context.user ? { identity: context.user.userPrincipalName, principalId: context.user.principalId } : {}),
      ...(context.clientId ? { clientId: context.clientId } : {}),
      ...(context.resource ? { resource: context.resource } : {}),
      outcome,
      ...(reason ? { reason } : {}),
      correlationId,
    });
  }
}

/** The grant type, if the endpoint supports it. */
function checkGrantType(grantType: string): string {
  if (grantType === 'password' || grantType === 'refresh_token' || grantType === 'authorization_code') return grantType;
  if (grantType === 'client_credentials') {
    throw new TokenRequestError(
      401,
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. The local tenant holds no client secrets or certificates: " +
        "services get tokens from their host's managed-identity endpoint (ManagedIdentityCredential with the host's env file).",
    );
  }
  if (grantType === '') throw new TokenRequestError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
  throw new TokenRequestError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
}

function required(form: URLSearchParams, name: string): string {
  const value = form.get(name);
  if (!value) throw new TokenRequestError(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`);
  return value;
}

function scopesOf(form: URLSearchParams): string[] {
  return (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
}

/** MSAL's `client_info`: base64url JSON with the user's object id and tenant. */
function clientInfo(objectId: string, tenantId: string): string {
  return Buffer.from(JSON.stringify({ uid: objectId, utid: tenantId })).toString('base64url');
}
