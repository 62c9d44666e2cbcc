import { readFileSync } from 'node:fs';
import { AdminClient, AdminClientError } from '../cli/admin-client.js';
import { requestJson } from '../cli/https-json.js';
import { armResource } from '../cli/operator-session.js';
import { publicClients } from '../entra/token-endpoint.js';

/** Where a running local Azure's token and management endpoints are, and how to trust and sign in to it. */
export interface SignInTarget {
  /** The authority host. */
  login: string;
  /** The management API. */
  management: string;
  tenantId: string;
  tenantDomain: string;
  /** The operator's UPN. */
  operator: string;
  /** The local CA, PEM. */
  ca: string;
  /** Path of the home credential. */
  homeCredentialFile: string;
}

/**
 * Users' ARM tokens for tests, from the real token endpoint (the password grant with the home credential, as
 * the CLI signs in), cached per user until five minutes before they expire. It keeps no state in the home, so
 * tests may sign the CLI in as someone else meanwhile.
 */
export class UserTokens {
  private readonly cache = new Map<string, { token: string; expiresOn: number }>();

  constructor(private readonly target: () => SignInTarget) {}

  /** An ARM access token of `username` (a UPN or a name in the tenant's domain). **Default**: the operator. */
  async token(username?: string): Promise<string> {
    const target = this.target();
    const upn = !username ? target.operator : username.includes('@') ? username : `${username}@${target.tenantDomain}`;
    const cached = this.cache.get(upn);
    if (cached && cached.expiresOn - Date.now() > 300_000) return cached.token;
    const response = await requestJson(`${target.login}/${target.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      ca: target.ca,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: publicClients.azureCli,
        username: upn,
        password: readFileSync(target.homeCredentialFile, 'utf8').trim(),
        scope: `${armResource}/.default`,
      }).toString(),
    });
    const body = response.json as { access_token?: string; expires_in?: number; error_description?: string } | undefined;
    if (!body?.access_token) throw new AdminClientError(`signing ${upn} in failed (${response.status}): ${body?.error_description ?? response.text}`);
    this.cache.set(upn, { token: body.access_token, expiresOn: Date.now() + (body.expires_in ?? 0) * 1000 });
    return body.access_token;
  }

  /** A management API client acting as `username` (**default**: the operator). */
  client(username?: string): AdminClient {
    return new AdminClient({
      baseUrl: this.target().management,
      ca: this.target().ca,
      accessToken: (options) => {
        if (options?.forceRefresh) this.cache.clear();
        return this.token(username);
      },
    });
  }
}
