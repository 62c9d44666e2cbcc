import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWTPayload } from 'jose';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { CallerTokenError, CallerTokenVerifier } from '../src/callers/caller-token.verifier.js';
import { SigningKeysUnavailableError } from '../src/callers/tenant-signing-keys.js';

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

  const now = (): number => Math.floor(Date.now() / 1000);
  /** A token signed with the tenant's own key: valid for the gateway unless `claims` say otherwise (undefined removes one). */
  async function signed(claims: Partial<Record<'exp' | 'nbf' | 'iat', number | undefined>>): Promise<string> {
    const { kid, privateKey } = test.azure.keys.current;
    const tid = test.azure.directory.tenantId;
    const payload: JWTPayload = { tid, oid: 'x', iss: `https://sts.windows.net/${tid}/`, aud: 'api://keyless-gateway', iat: now(), nbf: now(), exp: now() + 3600, ...claims };
    for (const [claim, value] of Object.entries(payload)) if (value === undefined) delete payload[claim];
    return `Bearer ${await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey)}`;
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
    ['an expired token', async () => signed({ exp: now() - 3600 }), /expired/],
    ['a token without exp (it would never expire)', async () => signed({ exp: undefined }), /"exp" claim/],
    ['a token not valid before an hour from now (nbf)', async () => signed({ nbf: now() + 3600 }), /"nbf" claim/],
    ['a token issued an hour from now (iat)', async () => signed({ iat: now() + 3600 }), /"iat" claim is in the future/],
  ])('refuses %s, saying why', async (_case, header, reason) => {
    await expect(verifier.verify(await header())).rejects.toThrow(CallerTokenError);
    await expect(verifier.verify(await header())).rejects.toThrow(reason);
  });

  it('accepts a token of the tenant with exp, nbf and iat in range', async () => {
    await expect(verifier.verify(await signed({}))).resolves.toMatchObject({ principalId: 'x' });
  });

  describe('when a token was verified before', () => {
    it('refuses it once it expires, though it is remembered', async () => {
      // Valid for 5 more seconds: exp lies 295 s back, within the 300 s skew.
      const exp = now() - 295;
      const token = await signed({ exp, iat: exp - 3600, nbf: exp - 3600 });
      await expect(verifier.verify(token)).resolves.toMatchObject({ principalId: 'x' });
      while (Date.now() <= (exp + 300) * 1000) {
        await expect(verifier.verify(token)).resolves.toMatchObject({ principalId: 'x' });
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await expect(verifier.verify(token)).rejects.toThrow(/expired/);
    }, 20_000);

    it('refuses a token that differs from the remembered one in its signature', async () => {
      const token = await signed({});
      await verifier.verify(token);
      const signature = token.slice(token.lastIndexOf('.') + 1);
      const forged = `${token.slice(0, token.lastIndexOf('.') + 1)}${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
      await expect(verifier.verify(forged)).rejects.toThrow(/does not verify/);
      await expect(verifier.verify(token)).resolves.toMatchObject({ principalId: 'x' });
    });
  });

  describe('when OIDC discovery fails', () => {
    let authority: Server;
    let discoveries = 0;
    let healthy = false;

    beforeAll(async () => {
      const login = test.azure.hostEnv('gateway').AZURE_AUTHORITY_HOST!;
      const tenantId = test.azure.directory.tenantId;
      // An identity provider that fails until told otherwise, then points at the local Azure's keys.
      authority = createServer((_req, res) => {
        discoveries++;
        if (!healthy) return res.writeHead(500).end();
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jwks_uri: `${login}/${tenantId}/discovery/v2.0/keys` }));
      });
      await new Promise<void>((resolve) => authority.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise((resolve) => authority.close(resolve)));

    it('does not fetch it again for every request, fails fast with the time to wait, and recovers when it is back', async () => {
      const flaky = new CallerTokenVerifier({
        authorityHost: `http://127.0.0.1:${(authority.address() as AddressInfo).port}`,
        tenantId: test.azure.directory.tenantId,
        audiences: ['api://keyless-gateway'],
        failureBackoff: { initialDelayInMs: 2_000, maxDelayInMs: 2_000 },
      });
      const token = await signed({});
      const failures = await Promise.all(Array.from({ length: 20 }, () => flaky.verify(token).catch((error: unknown) => error)));
      expect(failures.every((e) => e instanceof SigningKeysUnavailableError)).toBe(true);
      expect((failures[0] as SigningKeysUnavailableError).retryAfterInMs).toBeGreaterThan(0);
      for (let i = 0; i < 20; i++) await expect(flaky.verify(token)).rejects.toBeInstanceOf(SigningKeysUnavailableError);
      expect(discoveries).toBe(1);

      healthy = true;
      const deadline = Date.now() + 15_000;
      let caller: unknown;
      while (!caller && Date.now() < deadline) {
        caller = await flaky.verify(token).catch(() => undefined);
        if (!caller) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(caller).toMatchObject({ principalId: 'x' });
      // One discovery per backoff period at most, then none: the result is cached.
      const afterRecovery = discoveries;
      for (let i = 0; i < 5; i++) await flaky.verify(token);
      expect(discoveries).toBe(afterRecovery);
    }, 20_000);
  });
});
