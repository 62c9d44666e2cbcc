import { ManagedIdentityCredential } from '@azure/identity';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// One host per file: @azure/identity chooses its managed-identity source once per process.
describe('Managed identity, App Service shape (IDENTITY_ENDPOINT + IDENTITY_HEADER)', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let credential: ManagedIdentityCredential;

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.enterHost('recommendation');
    credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  });
  afterAll(() => test.stop());

  const audiences = [
    ['Cognitive Services', 'https://cognitiveservices.azure.com/.default', 'https://cognitiveservices.azure.com'],
    ['Service Bus', 'https://servicebus.azure.net//.default', 'https://servicebus.azure.net/'],
    ['Key Vault', 'https://vault.azure.net/.default', 'https://vault.azure.net'],
  ] as const;

  it.each(['', '/v2.0'])('answers the authorization endpoint that discovery%s names with what to use instead, not a 404', async (version) => {
    const discovery = (await (await fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}${version}/.well-known/openid-configuration`)).json()) as { authorization_endpoint: string };
    const response = await fetch(`${discovery.authorization_endpoint}?client_id=x&response_type=code&redirect_uri=${encodeURIComponent('https://example.invalid/')}`, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.json()).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('npm run local-azure -- login') });
  });

  describe.each(audiences)('when a %s token is requested', (_name, scope, audience) => {
    it('issues a token that verifies against the published JWKS with the managed-identity claim set', async () => {
      const token = await credential.getToken(scope);
      const discovery = (await (await fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}/.well-known/openid-configuration`)).json()) as {
        issuer: string;
        jwks_uri: string;
      };
      const { payload } = await jwtVerify(token.token, createRemoteJWKSet(new URL(discovery.jwks_uri)), {
        issuer: discovery.issuer,
        audience,
      });
      const identity = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
      expect(discovery.issuer).toBe(`https://sts.windows.net/${env.AZURE_TENANT_ID}/`);
      expect(payload).toMatchObject({
        aud: audience,
        appid: identity.clientId,
        oid: identity.principalId,
        sub: identity.principalId,
        tid: env.AZURE_TENANT_ID,
        idtyp: 'app',
        ver: '1.0',
        xms_mirid: expect.stringMatching(/\/resourcegroups\/rg-keyless-local\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/id-keyless$/),
      });
      expect(payload.exp! - payload.iat!).toBe(86_400);
      expect(decodeProtectedHeader(token.token)).toMatchObject({ alg: 'RS256', kid: expect.any(String) });
    });

    it('serves the second request from the SDK cache (one sign-in per audience)', async () => {
      await credential.getToken(scope);
      await credential.getToken(scope);
      const signIns = test.azure.auditLog.signIns({ limit: 1000 }).filter((s) => s.resource === scope.replace(/\/\.default$/, ''));
      expect(signIns).toHaveLength(1);
      expect(signIns[0]).toMatchObject({ host: 'recommendation', endpoint: 'appservice', identity: 'id-keyless', outcome: 'success' });
    });
  });
});
