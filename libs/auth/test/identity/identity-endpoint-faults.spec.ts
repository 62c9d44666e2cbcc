import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { AuthHealthIndicator, AuthModule, type AuthModuleOptions, AzureIdentityService } from '../../src/index.js';
import { RecordingLogger } from '../support/recording.logger.js';
import { waitFor } from '../support/wait-for.js';

const tokenRequestTimeoutInMs = 1_500;

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// MSAL also keeps the first credential's HTTP client and retry policy (maxRetries 2, the default) for
// the whole process, so every app below runs with those.
// The identity endpoint failing by itself (as App Service's may in a container's first seconds) does not stop the
// app: it starts not ready, says why, and becomes ready by itself once the endpoint answers (startup rule 3).
describe('Startup access check against a misbehaving identity endpoint (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.enterHost('gateway');
  });
  afterEach(async () => {
    await test.azure.setIdentityEndpointFault('none');
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => test?.stop());

  async function startApp(options: Partial<AuthModuleOptions> = {}) {
    const logger = new RecordingLogger();
    const module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          tokenRequestTimeoutInMs,
          refreshRetryDelayInMs: 500,
          logger,
          ...options,
        }),
      ],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    apps.push(app);
    const started = Date.now();
    const error = await app.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, elapsed: Date.now() - started, logger, health: app.get(AuthHealthIndicator), identity: app.get(AzureIdentityService) };
  }

  /** The app started, not ready, with the one failure in health and the diagnostic (endpoint, identity) in its log. */
  function startedNotReady({ error, logger, health }: Awaited<ReturnType<typeof startApp>>) {
    expect(error).toBeUndefined();
    expect(health.isHealthy().auth.status).toBe('down');
    const [warning, ...more] = logger.messages('warn').filter((line) => line.startsWith('Startup access check'));
    expect(more).toEqual([]);
    expect(warning).toContain('Starting anyway, not ready');
    expect(warning).toContain(env.IDENTITY_ENDPOINT!);
    expect(warning).toContain(env.AZURE_CLIENT_ID!);
    return { code: /the identity endpoint is failing \((\w+) for /.exec(warning!)?.[1], message: warning! };
  }

  describe('when the endpoint answers garbage', () => {
    it('starts not ready with IdentityEndpointInvalidResponse quoting what it answered', async () => {
      await test.azure.setIdentityEndpointFault('garbage');
      const failure = startedNotReady(await startApp());
      expect(failure.code).toBe('IdentityEndpointInvalidResponse');
      expect(failure.message).toContain('answered 200 text/html that is not a token response: <html><body>not a token</body></html>');
    });
  });

  describe('when the endpoint answers 500', () => {
    it('starts not ready with IdentityEndpointError after the bounded SDK retries', async () => {
      await test.azure.setIdentityEndpointFault('error');
      const started = await startApp({ tokenRequestTimeoutInMs: 5_000 });
      const failure = startedNotReady(started);
      expect(failure.code).toBe('IdentityEndpointError');
      expect(failure.message).toContain('answered 500 after 3 attempt(s)');
      expect(started.elapsed).toBeLessThan(5_000);
    });
  });

  describe('when the endpoint accepts the connection and never answers', () => {
    it('starts not ready with IdentityEndpointTimeout once the configured timeout has passed, not later', async () => {
      await test.azure.setIdentityEndpointFault('hang');
      const started = await startApp();
      const failure = startedNotReady(started);
      expect(failure.code).toBe('IdentityEndpointTimeout');
      expect(started.elapsed).toBeGreaterThanOrEqual(tokenRequestTimeoutInMs - 50);
      // Bounded by the timeout, not by the SDK's retries (a loaded machine may add a little).
      expect(started.elapsed).toBeLessThan(tokenRequestTimeoutInMs + 2_500);
    });
  });

  describe('when the startup budget is shorter than a hanging request', () => {
    it('starts not ready when the startup budget runs out', async () => {
      await test.azure.setIdentityEndpointFault('hang');
      const started = await startApp({ tokenRequestTimeoutInMs: 10_000, startupTimeoutInMs: 500 });
      const failure = startedNotReady(started);
      expect(failure.code).toBe('IdentityEndpointTimeout');
      expect(failure.message).toContain('within the startup budget of 500 ms');
      expect(started.elapsed).toBeLessThan(3_000);
    });
  });

  // Last: once a token is held, MSAL's process-wide cache answers every later app of this file.
  describe('when nothing listens at the endpoint', () => {
    it('starts not ready with IdentityEndpointUnreachable, and becomes ready by itself once the endpoint listens again', async () => {
      await test.azure.setIdentityEndpointFault('stopped');
      const started = await startApp({ tokenRequestTimeoutInMs: 5_000 });
      const failure = startedNotReady(started);
      expect(failure.code).toBe('IdentityEndpointUnreachable');
      expect(failure.message).toContain('ECONNREFUSED');
      expect(started.elapsed).toBeLessThan(5_000);

      await test.azure.setIdentityEndpointFault('none');
      // The declared audience is retried in the background: no caller, no restart.
      await waitFor('health up once the endpoint is back', () => (started.health.isHealthy().auth.status === 'up' ? true : undefined), 30_000);
      const token = await started.identity.getToken('cognitiveServices');
      await expect(test.azure.guard.authenticate(token.token, ['https://cognitiveservices.azure.com'])).resolves.toBeDefined();
    }, 45_000);
  });
});
