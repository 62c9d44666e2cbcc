import { ManagedIdentityCredential } from '@azure/identity';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { eventually } from '../servicebus/support.js';

const scope = 'https://cognitiveservices.azure.com/.default';
// A window long enough that the SDK's request falls in it on a loaded machine (3 s ran out before it in a CI run at
// load 25: the SDK got its token), short enough to wait for.
const throttling = { requestsPerWindow: 3, windowInMs: 8000, maxConcurrentRequests: 5 };

// What the unmodified SDK does when its host is throttled, through the App Service shape the services use. A
// pass-through in front of the identity endpoint counts the SDK's requests (its retries included).
describe('ManagedIdentityCredential against a throttled host', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let counter: Server;
  let sdkRequests = 0;

  beforeAll(async () => {
    test = await startTestAzure({ config: { identityEndpoint: { throttling } } });
    env = test.enterHost('recommendation');
    counter = createServer((request, response) => {
      sdkRequests++;
      const target = new URL(request.url!, test.azure.endpoints.identity);
      void fetch(target, { headers: { 'x-identity-header': String(request.headers['x-identity-header'] ?? '') } }).then(async (answer) => {
        response.writeHead(answer.status, Object.fromEntries(answer.headers));
        response.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
    // The SDK reads IDENTITY_ENDPOINT when it first asks for a token.
    process.env.IDENTITY_ENDPOINT = `http://127.0.0.1:${(counter.address() as AddressInfo).port}${new URL(env.IDENTITY_ENDPOINT!).pathname}`;
  });
  afterAll(async () => {
    counter.closeAllConnections();
    await new Promise((resolve) => counter.close(resolve));
    await test.stop();
  });

  /** Spends the host's window with requests of its own (another process on the host, say). */
  const exhaustTheHost = async () => {
    const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'https://vault.azure.net', client_id: env.AZURE_CLIENT_ID! });
    for (let i = 0; i < throttling.requestsPerWindow; i++) {
      await fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    }
  };

  it('fails at once without retrying (no Retry-After), with CredentialUnavailableError carrying the endpoint\'s words, then gets a token once the window has passed', async () => {
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    await exhaustTheHost();

    const error = (await credential.getToken(scope).catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('CredentialUnavailableError');
    expect(error.message).toMatch(/^ManagedIdentityCredential: Authentication failed\. .*Temporarily throttled, too many requests/);
    expect(sdkRequests).toBe(1);

    const token = await eventually(() => credential.getToken(scope).catch(() => undefined), 30_000, 'a token once the window has passed');
    expect(token.token.split('.')).toHaveLength(3);
  }, 45_000);
});
