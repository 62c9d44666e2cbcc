import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { publicClients } from '../entra/token-endpoint.js';
import type { LocalAzureHome } from '../home.js';
import type { RuntimeInfo } from '../local-azure.js';
import { AdminClientError } from './admin-client-error.js';
import { requestJson } from './https-json.js';

/** The resource the CLI's tokens are for: ARM, spelled as `az` asks for it. */
export const armResource = 'https://management.core.windows.net/';

/** The signed-in user, as `account show` prints it. */
export interface SignedInAccount {
  /** The UPN. */
  username: string;
  objectId: string;
  name: string;
  tenantId: string;
}

/** The CLI's token cache (`$LOCAL_AZURE_HOME/cli/token-cache.json`, mode 0600), like a signed-in `az`'s MSAL cache. */
interface TokenCache {
  version: 1;
  /** Set by `logout`: commands refuse until `login`. */
  signedOut?: boolean;
  account?: SignedInAccount;
  refreshToken?: string;
  accessTokens: Record<string, { token: string; expiresOn: number }>;
}

/** An answer of the token endpoint, as the CLI uses it. */
interface TokenResponse {
  access_token: string;
  expires_in: number;
  refresh_token?: string;
  id_token?: string;
}

const defaults = {
  /** An access token is renewed when it has less left than this (MSAL's offset). */
  renewBeforeExpiryInMs: 300_000,
  clientId: publicClients.azureCli,
  scope: `${armResource}/.default offline_access openid profile`,
};

/**
 * The CLI's sign-in, the way `az` keeps one: `login` signs a user of the local tenant in at the token endpoint
 * (the resource-owner password grant, with the home credential as proof that this OS user may act for the local
 * Azure), and caches the refresh token and access tokens it gets in the home with mode 0600; every command then
 * uses the cached access token for ARM, renews it with the refresh token when it nears expiry, and signs in again
 * with the home credential only when the refresh token no longer works (a new tenant, a revoked session).
 *
 * Before any `login`, the CLI signs in as the operator by itself, so commands work out of the box; after `logout`
 * they refuse until the next `login`.
 */
export class OperatorSession {
  constructor(
    private readonly home: LocalAzureHome,
    private readonly runtime: RuntimeInfo,
    private readonly ca: string,
  ) {}

  /** Who is signed in (undefined before the first sign-in and after `logout`). */
  account(): SignedInAccount | undefined {
    const cache = this.read();
    return cache?.signedOut || cache?.account?.tenantId !== this.runtime.tenantId ? undefined : cache.account;
  }

  /** Signs `username` in (a UPN, or a name in the tenant's domain; **default**: the operator). */
  async login(username?: string): Promise<SignedInAccount> {
    const upn = this.upn(username ?? this.runtime.operator);
    const response = await this.tokenRequest({
      grant_type: 'password',
      client_id: defaults.clientId,
      username: upn,
      password: this.homeCredential(),
      scope: defaults.scope,
      client_info: '1',
    });
    const account = accountOf(response, this.runtime.tenantId, upn);
    this.write({
      version: 1,
      account,
      ...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
      accessTokens: { [armResource]: { token: response.access_token, expiresOn: Date.now() + response.expires_in * 1000 } },
    });
    return account;
  }

  /** Signs out: forgets the tokens; commands refuse until the next `login`. Returns who was signed in. */
  logout(): SignedInAccount | undefined {
    const account = this.account();
    this.write({ version: 1, signedOut: true, accessTokens: {} });
    return account;
  }

  /**
   * An access token for ARM: the cached one while it has more than five minutes left, else one bought with the
   * refresh token, else (first use, new tenant, dead session) a new sign-in.
   *
   * @throws {AdminClientError} after `logout`, or when signing in fails.
   */
  async accessToken(options: { forceRefresh?: boolean } = {}): Promise<string> {
    let cache = this.read();
    if (cache?.signedOut) throw new AdminClientError(`Not signed in. Run \`${this.home.command('npm run local-azure -- login')}\` (add --username to sign in as another user).`);
    if (!cache?.account || cache.account.tenantId !== this.runtime.tenantId) {
      await this.login(cache?.account?.username);
      cache = this.read()!;
    }
    const cached = cache.accessTokens[armResource];
    if (!options.forceRefresh && cached && cached.expiresOn - Date.now() > defaults.renewBeforeExpiryInMs) return cached.token;
    if (cache.refreshToken) {
      const renewed = await this.tokenRequest(
        { grant_type: 'refresh_token', client_id: defaults.clientId, refresh_token: cache.refreshToken, scope: defaults.scope },
        { quiet: true },
      ).catch(() => undefined);
      if (renewed) {
        this.write({
          ...cache,
          refreshToken: renewed.refresh_token ?? cache.refreshToken,
          accessTokens: { ...cache.accessTokens, [armResource]: { token: renewed.access_token, expiresOn: Date.now() + renewed.expires_in * 1000 } },
        });
        return renewed.access_token;
      }
    }
    await this.login(cache.account!.username);
    return this.read()!.accessTokens[armResource]!.token;
  }

  private upn(username: string): string {
    return username.includes('@') ? username : `${username}@${this.runtime.tenantDomain}`;
  }

  private homeCredential(): string {
    const file = this.home.homeCredentialFile;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new AdminClientError(
        code === 'ENOENT'
          ? `No home credential at ${file}: the local Azure has not started with this home yet.`
          : `Cannot read ${file} (${code}): signing in needs the local Azure's home, so run the command as the OS user that runs the local Azure ` +
              '(under docker compose: docker compose exec local-azure node tools/local-azure/dist/main.js …).',
      );
    }
  }

  private async tokenRequest(form: Record<string, string>, options: { quiet?: boolean } = {}): Promise<TokenResponse> {
    const url = `${this.runtime.login}/${this.runtime.tenantId}/oauth2/v2.0/token`;
    let response;
    try {
      response = await requestJson(url, {
        method: 'POST',
        ca: this.ca,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    } catch (error) {
      throw new AdminClientError(`Cannot reach the local Azure's token endpoint at ${url} (${(error as Error).message}). Is it still running?`);
    }
    const body = response.json as (TokenResponse & { error?: string; error_description?: string }) | undefined;
    if (response.status !== 200 || !body?.access_token) {
      if (options.quiet) throw new AdminClientError('refresh failed');
      throw new AdminClientError(`Sign-in failed: ${body?.error ?? response.status}: ${body?.error_description ?? response.text}`);
    }
    return body;
  }

  private read(): TokenCache | undefined {
    const file = this.home.tokenCacheFile;
    if (!existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as TokenCache;
    } catch {
      return undefined;
    }
  }

  private write(cache: TokenCache): void {
    const file = this.home.tokenCacheFile;
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, JSON.stringify(cache, null, 2), { mode: 0o600 });
    renameSync(tmp, file);
  }
}

/** The account a sign-in answer is for (from its ID token: issued over TLS by the local Azure itself). */
function accountOf(response: TokenResponse, tenantId: string, upn: string): SignedInAccount {
  const claims = response.id_token ? (JSON.parse(Buffer.from(response.id_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>) : {};
  return {
    username: String(claims.preferred_username ?? upn),
    objectId: String(claims.oid ?? ''),
    name: String(claims.name ?? upn),
    tenantId,
  };
}
