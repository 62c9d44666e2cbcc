import { decodeJwt } from 'jose';
import { readFileSync } from 'node:fs';
import { publicClients } from '../../src/entra/token-endpoint.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// The tenant's token endpoint, for its users (the operator and configured users), spoken as MSAL and az do.
describe('The token endpoint for the tenant\'s users', () => {
  let test: TestAzure;
  let credential: string;

  const post = async (form: Record<string, string>, version: 'v1' | 'v2' = 'v2') => {
    const path = version === 'v2' ? 'oauth2/v2.0/token' : 'oauth2/token';
    const response = await fetch(`${test.azure.endpoints.login}/${test.azure.directory.tenantId}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const password = (overrides: Record<string, string> = {}) => ({
    grant_type: 'password',
    client_id: publicClients.azureCli,
    username: test.azure.directory.operator.userPrincipalName,
    password: credential,
    scope: 'https://management.azure.com/.default offline_access openid profile',
    client_info: '1',
    ...overrides,
  });

  beforeAll(async () => {
    test = await startTestAzure({ config: { users: { reader: { displayName: 'Rea Der', roleAssignments: [{ role: 'Reader', scope: 'subscription' }] } } } });
    credential = readFileSync(test.azure.home.homeCredentialFile, 'utf8').trim();
  });
  afterAll(() => test.stop());

  describe('when a user signs in with the home credential', () => {
    it('answers the v2 shape with a delegated access token, a refresh token, an ID token and client info', async () => {
      const { status, body } = await post(password());
      expect(status).toBe(200);
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, refresh_token: expect.any(String), id_token: expect.any(String) });
      const operator = test.azure.directory.operator;
      expect(decodeJwt(body.access_token as string)).toMatchObject({
        aud: 'https://management.azure.com',
        iss: `https://sts.windows.net/${test.azure.directory.tenantId}/`,
        oid: operator.principalId,
        upn: operator.userPrincipalName,
        appid: publicClients.azureCli,
        idtyp: 'user',
        scp: 'user_impersonation',
      });
      expect(decodeJwt(body.id_token as string)).toMatchObject({ aud: publicClients.azureCli, oid: operator.principalId, preferred_username: operator.userPrincipalName, ver: '2.0' });
      expect(JSON.parse(Buffer.from(body.client_info as string, 'base64url').toString())).toEqual({ uid: operator.principalId, utid: test.azure.directory.tenantId });
    });

    it('answers the v1 shape for resource= at the v1 endpoint, with the audience spelled as asked', async () => {
      const { status, body } = await post({ grant_type: 'password', client_id: publicClients.azureCli, username: 'reader@keylesslocal.onmicrosoft.com', password: credential, resource: 'https://management.core.windows.net/' }, 'v1');
      expect(status).toBe(200);
      expect(body).toMatchObject({ resource: 'https://management.core.windows.net/', expires_on: expect.stringMatching(/^\d+$/), refresh_token: expect.any(String) });
      expect(decodeJwt(body.access_token as string)).toMatchObject({ aud: 'https://management.core.windows.net/', name: 'Rea Der' });
    });
  });

  describe('when a refresh token is redeemed', () => {
    it('buys access tokens for any resource for the same user, only for the client it was issued to', async () => {
      const refresh = (await post(password())).body.refresh_token as string;
      const renewed = await post({ grant_type: 'refresh_token', client_id: publicClients.azureCli, refresh_token: refresh, scope: 'https://servicebus.azure.net//.default' });
      expect(renewed.status).toBe(200);
      expect(decodeJwt(renewed.body.access_token as string)).toMatchObject({ aud: 'https://servicebus.azure.net/', oid: test.azure.directory.operator.principalId });
      const otherClient = await post({ grant_type: 'refresh_token', client_id: publicClients.azurePowerShell, refresh_token: refresh, scope: 'https://management.azure.com/.default' });
      expect(otherClient).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_codes: [70000] } });
      const garbage = await post({ grant_type: 'refresh_token', client_id: publicClients.azureCli, refresh_token: 'x'.repeat(64), scope: 'https://management.azure.com/.default' });
      expect(garbage).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    });
  });

  describe('when a one-time authorization code is redeemed (the portal\'s sign-in link)', () => {
    const redirectUri = 'https://localhost/portal/signin';
    const issue = (lifetimeInMs?: number): string =>
      test.azure.userSessions.issueAuthorizationCode({ userId: test.azure.directory.operator.principalId, clientId: publicClients.azureCli, redirectUri, ...(lifetimeInMs !== undefined ? { lifetimeInMs } : {}) });
    const redeem = (code: string, uri = redirectUri) =>
      post({ grant_type: 'authorization_code', client_id: publicClients.azureCli, code, redirect_uri: uri, scope: 'https://management.azure.com/.default offline_access' });

    it('signs the user in once, then refuses the same code', async () => {
      const code = issue();
      const first = await redeem(code);
      expect(first.status).toBe(200);
      expect(decodeJwt(first.body.access_token as string).oid).toBe(test.azure.directory.operator.principalId);
      expect(first.body.refresh_token).toEqual(expect.any(String));
      expect(await redeem(code)).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_codes: [54005] } });
    });

    it('refuses an expired code, and a code presented with another redirect URI', async () => {
      expect(await redeem(issue(-1))).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_codes: [70008] } });
      expect(await redeem(issue(), 'https://evil.example/cb')).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_codes: [70000] } });
    });
  });

  describe('when a request is not acceptable', () => {
    it.each([
      ['a wrong credential', () => password({ password: 'guess' }), 400, 'invalid_grant', 50126],
      ['an unknown user', () => password({ username: `nobody@${test.azure.directory.domain}` }), 400, 'invalid_grant', 50034],
      ['a user name without the domain', () => password({ username: 'operator' }), 400, 'invalid_grant', 50034],
      ['an unknown client', () => password({ client_id: '11111111-2222-3333-4444-555555555555' }), 400, 'unauthorized_client', 700016],
      ['client credentials (no secrets here)', () => ({ grant_type: 'client_credentials', client_id: publicClients.azureCli, scope: 'https://management.azure.com/.default' }), 401, 'invalid_client', 7000218],
      ['two resources at once', () => password({ scope: 'https://management.azure.com/.default https://vault.azure.net/.default' }), 400, 'invalid_scope', 28000],
      ['an unknown resource', () => password({ scope: 'https://example.com/.default' }), 400, 'invalid_resource', 500011],
      ['a missing grant type', () => ({ client_id: publicClients.azureCli }), 400, 'invalid_request', 900144],
      ['an unsupported grant type', () => ({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: publicClients.azureCli }), 400, 'unsupported_grant_type', 70003],
    ])('refuses %s with Entra\'s error', async (_case, form, status, error, aadsts) => {
      const response = await post(form());
      expect(response).toMatchObject({ status, body: { error, error_codes: [aadsts], error_description: expect.stringMatching(new RegExp(`^AADSTS${aadsts}: `)) } });
      expect(response.body).not.toHaveProperty('access_token');
    });

    it('never writes the credential or a refresh token into the sign-in log', async () => {
      const refresh = (await post(password())).body.refresh_token as string;
      await post(password({ password: `${credential}x` }));
      const log = JSON.stringify(test.azure.auditLog.signIns({ limit: 1000 }));
      expect(log).toContain('"endpoint":"token"');
      expect(log).toContain('"grantType":"refresh_token"');
      expect(log).not.toContain(credential);
      expect(log).not.toContain(refresh);
    });
  });
});
