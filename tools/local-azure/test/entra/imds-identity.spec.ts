import { ManagedIdentityCredential } from '@azure/identity';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// The IMDS shape, reached the way AKS pod identity does: AZURE_POD_IDENTITY_AUTHORITY_HOST.
describe('Managed identity, IMDS shape (AZURE_POD_IDENTITY_AUTHORITY_HOST)', () => {
  let test: TestAzure;
  let clientId: string;

  beforeAll(async () => {
    test = await startTestAzure();
    const env = test.azure.hostEnv('vision');
    clientId = env.AZURE_CLIENT_ID!;
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = test.azure.identityEndpointsOf('vision').imdsAuthorityHost;
  });
  afterAll(async () => {
    delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    await test.stop();
  });

  it('issues tokens for Cognitive Services, Service Bus and Key Vault to the user-assigned identity', async () => {
    const credential = new ManagedIdentityCredential({ clientId });
    const identity = test.azure.directory.findIdentity(clientId)!;
    for (const scope of ['https://cognitiveservices.azure.com/.default', 'https://servicebus.azure.net//.default', 'https://vault.azure.net/.default']) {
      const token = await credential.getToken(scope);
      const claims = JSON.parse(Buffer.from(token.token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(claims).toMatchObject({ aud: scope.replace(/\/\.default$/, ''), oid: identity.principalId, appid: clientId });
      expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 23 * 3600 * 1000);
    }
    expect(test.azure.auditLog.signIns().map((s) => [s.endpoint, s.host, s.outcome])).toEqual([
      ['imds', 'vision', 'success'],
      ['imds', 'vision', 'success'],
      ['imds', 'vision', 'success'],
    ]);
  });
});
