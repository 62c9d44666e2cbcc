import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConsoleLog } from '../data-plane.js';
import { Router, sendJson, type ClientErrorShape } from '../http/http-kit.js';
import type { LocalAzureHome } from '../home.js';
import type { Directory } from './directory.js';
import type { SigningKeys } from './signing-keys.js';
import type { TokenEndpoint } from './token-endpoint.js';
import { v1Issuer, v2Issuer } from './token-issuer.js';

/** Entra's OAuth error body (RFC 6749 5.2), as the login endpoints answer what is not a token request. */
export const entraClientErrorShape: ClientErrorShape = ({ detail }) => ({
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify({ error: 'invalid_request', error_description: detail }),
});

/**
 * The tenant's public login endpoints (what `AZURE_AUTHORITY_HOST` points at): OpenID Connect discovery
 * for v1 (`/{tid}/.well-known/openid-configuration`) and v2 (`/{tid}/v2.0/.well-known/…`), their JWKS, and
 * the token endpoint for the tenant's users (see {@link TokenEndpoint}).
 */
export function loginEndpoints(
  directory: Directory,
  keys: SigningKeys,
  authority: () => string,
  tokenEndpoint: TokenEndpoint,
  /** The home, so the commands the authorize endpoint names work as printed for a home of its own. */
  home: Pick<LocalAzureHome, 'command'>,
  /** The local Azure's console, for unexpected failures. */
  log: ConsoleLog,
): (request: IncomingMessage, response: ServerResponse) => void {
  const tenantPattern = '(?<tenant>[0-9a-fA-F-]{36}|common|organizations)';
  const tenantOf = (given: string): string | undefined =>
    given.toLowerCase() === directory.tenantId || given === 'common' || given === 'organizations' ? directory.tenantId : undefined;
  const unknownTenant = (res: ServerResponse, given: string): void =>
    sendJson(res, 400, {
      error: 'invalid_tenant',
      error_description: `AADSTS90002: Tenant '${given}' not found. The local Azure's tenant is ${directory.tenantId}.`,
    });
  const cacheHeaders = { 'cache-control': 'max-age=86400, private' };

  const discovery = (version: 'v1' | 'v2') => (_req: IncomingMessage, res: ServerResponse, { params }: { params: Record<string, string> }) => {
    const tid = tenantOf(params.tenant!);
    if (!tid) return unknownTenant(res, params.tenant!);
    const base = `${authority()}/${tid}`;
    const v2 = version === 'v2';
    sendJson(
      res,
      200,
      {
        issuer: v2 ? v2Issuer(tid) : v1Issuer(tid),
        authorization_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/authorize`,
        token_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/token`,
        jwks_uri: `${base}/discovery${v2 ? '/v2.0' : ''}/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: 'EU',
        cloud_instance_name: 'microsoftonline.com',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
      },
      cacheHeaders,
    );
  };
  const jwks = (_req: IncomingMessage, res: ServerResponse, { params }: { params: Record<string, string> }) => {
    if (!tenantOf(params.tenant!)) return unknownTenant(res, params.tenant!);
    sendJson(res, 200, keys.jwks(), cacheHeaders);
  };

  return new Router(
    (line) => log(`[login] ${line}`),
    (_req, res) => sendJson(res, 404, { error: 'not_found', error_description: 'No such endpoint in the local tenant.' }),
  )
    .on('GET', new RegExp(`^/${tenantPattern}/\\.well-known/openid-configuration$`), discovery('v1'))
    .on('GET', new RegExp(`^/${tenantPattern}/v2\\.0/\\.well-known/openid-configuration$`), discovery('v2'))
    .on('GET', new RegExp(`^/${tenantPattern}/discovery(/v2\\.0)?/keys$`), jwks)
    // Discovery must name an authorization endpoint (OpenID Connect requires one), but the local tenant has no
    // interactive sign-in: a browser or a library sent there learns what to use instead, not a bare 404.
    .on('GET', new RegExp(`^/${tenantPattern}/oauth2(/v2\\.0)?/authorize$`), (_req, res) =>
      sendJson(res, 400, {
        error: 'invalid_request',
        error_description: `The local Azure offers no interactive sign-in. Users sign in with \`${home.command('npm run local-azure -- login')}\` (the CLI) or a one-time portal link (\`${home.command('npm run -s local-azure -- portal')}\`); apps and services get tokens from their identity endpoint.`,
      }),
    )
    .on('POST', new RegExp(`^/${tenantPattern}/oauth2(?<v2>/v2\\.0)?/token$`), (req, res, { params }) => {
      if (!tenantOf(params.tenant!)) return unknownTenant(res, params.tenant!);
      return tokenEndpoint.handle(req, res, params.v2 ? 'v2' : 'v1');
    })
    .listener();
}
