import { SignJWT } from 'jose';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { CallerTokenError, CallerTokenVerifier } from '../src/callers/caller-token.verifier.js';

describe(CallerTokenVerifier.name, () => {
  let test: TestAzure;
  let verifier: CallerTokenVerifier;

  /** A token from a host's managed-identity endpoint, as the SDK would get it. */
  async function tokenFrom(host: string, resource: string): Promise<string> {
    const env = test.azure.hostEnv(host);
    const query = new URLSearchParams({ 'api-version': '2019-08-01', resource, client_id: env.AZURE_CLIENT_ID! });
    const response = await fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    return ((await response.json()) as { access_token: string }).access_token;
  }

  beforeAll(async () => {
    test = await startTestAzure();
    const env = test.azure.hostEnv('gateway');
    verifier = new CallerTokenVerifier({ authorityHost: env.AZURE_AUTHORITY_HOST!, tenantId: env.AZURE_TENANT_ID!, audiences: ['api://keyless-gateway'] });
  });
  afterAll(() => test.stop());

  it("accepts the storefront's token for the gateway with its app roles", async () => {
    const caller = await verifier.verify(`Bearer ${await tokenFrom('storefront', 'api://keyless-gateway')}`);
    const storefront = test.azure.directory.userAssignedIdentity('id-storefront')!;
    expect(caller).toEqual({ principalId: storefront.principalId, clientId: storefront.clientId, roles: ['Catalog.Write', 'Catalog.Read', 'Recommendations.Read', 'Images.Analyze'] });
  });

  it('accepts a token of an identity without roles (the route decides), with no roles', async () => {
    expect((await verifier.verify(`Bearer ${await tokenFrom('gateway', 'api://keyless-gateway')}`)).roles).toEqual([]);
  });

  it.each([
    ['no Authorization header', async () => undefined, /no bearer token/],
    ['a token for another audience', async () => `Bearer ${await tokenFrom('storefront', 'https://cognitiveservices.azure.com')}`, /"aud" claim/],
    ['a token signed by someone else', async () => {
      const { privateKey } = await (await import('jose')).generateKeyPair('RS256');
      return `Bearer ${await new SignJWT({ aud: 'api://keyless-gateway' }).setProtectedHeader({ alg: 'RS256', kid: 'x' }).sign(privateKey)}`;
    }, /does not verify/],
    ['an expired token', async () => {
      const { kid, privateKey } = test.azure.keys.current;
      const tid = test.azure.directory.tenantId;
      const past = Math.floor(Date.now() / 1000) - 3600;
      return `Bearer ${await new SignJWT({ tid, oid: 'x' }).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(`https://sts.windows.net/${tid}/`).setAudience('api://keyless-gateway').setExpirationTime(past).sign(privateKey)}`;
    }, /expired/],
  ])('refuses %s, saying why', async (_case, header, reason) => {
    await expect(verifier.verify(await header())).rejects.toThrow(CallerTokenError);
    await expect(verifier.verify(await header())).rejects.toThrow(reason);
  });
});
