import { Test } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { AuthHealthIndicator, AuthModule, AzureIdentityService } from '../../src/index.js';

// The host's budget of token requests: spent by another process of the host just before this app starts (as several
// instances starting at once on one VM would). A window long enough that the app's first request falls in it.
const throttling = { requestsPerWindow: 2, windowInMs: 3_000, maxConcurrentRequests: 5 };

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('Startup access check against a throttled host (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;

  beforeAll(async () => {
    test = await startTestAzure({ config: { identityEndpoint: { throttling } } });
    env = test.enterHost('gateway');
  });
  afterAll(() => test?.stop());

  it('starts not ready with IdentityEndpointThrottled (429, which the SDK does not retry), and becomes ready by itself once the host may ask again', async () => {
    const logger = new RecordingLogger();
    const module = await Test.createTestingModule({
      imports: [AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: ['cognitiveServices'], refreshRetryDelayInMs: 500, logger })],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    try {
      const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'https://vault.azure.net', client_id: env.AZURE_CLIENT_ID! });
      for (let i = 0; i < throttling.requestsPerWindow; i++) {
        expect((await fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } })).status).toBe(200);
      }

      await app.init();
      const health = app.get(AuthHealthIndicator);
      expect(health.isHealthy().auth.status).toBe('down');
      const warnings = logger.messages('warn').filter((line) => line.startsWith('Startup access check'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('the identity endpoint is failing (IdentityEndpointThrottled for https://cognitiveservices.azure.com)');
      expect(warnings[0]).toContain(`identity endpoint ${env.IDENTITY_ENDPOINT} throttled the host (429): {"statusCode":429,"message":"Temporarily throttled, too many requests`);
      expect(warnings[0]).toContain('keep one credential per process and reuse its tokens');

      await waitFor('health up once the window has passed', () => (health.isHealthy().auth.status === 'up' ? true : undefined), 20_000);
      const token = await app.get(AzureIdentityService).getToken('cognitiveServices');
      await expect(test.azure.guard.authenticate(token.token, ['https://cognitiveservices.azure.com'])).resolves.toBeDefined();
    } finally {
      await app.close();
    }
  }, 30_000);
});
