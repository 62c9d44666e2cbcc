import { ManagedIdentityCredential } from '@azure/identity';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

// The IMDS shape, reached the way AKS pod identity does: AZURE_POD_IDENTITY_AUTHORITY_HOST, from the host's env file.
describe('Managed identity, IMDS shape (AZURE_POD_IDENTITY_AUTHORITY_HOST)', () => {
  let test: TestAzure;
  let clientId: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.azure.hostEnv('vision');
    clientId = env.AZURE_CLIENT_ID!;
    // Only this variable: without IDENTITY_ENDPOINT the SDK takes the IMDS path.
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  });
  afterAll(async () => {
    delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    await test.stop();
  });

  it("gives each host its own base URL, whose path is the host's capability (256 bits, lowercase hex: MSAL lower-cases the URL)", () => {
    const bases = test.azure.directory.hosts().map((host) => test.azure.hostEnv(host.name).AZURE_POD_IDENTITY_AUTHORITY_HOST!);
    for (const base of bases) expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/imds\/[0-9a-f]{64}$/);
    expect(new Set(bases).size).toBe(bases.length);
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
