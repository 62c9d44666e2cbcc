import { Test } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, type AuthModuleOptions } from '../../src/index.js';
import { StartupAccessCheckError } from '../../src/diagnostics/index.js';

const tokenRequestTimeoutInMs = 1_500;

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// MSAL also keeps the first credential's HTTP client and retry policy (maxRetries 2, the default) for
// the whole process, so every app below runs with those.
describe('Startup access check against a misbehaving identity endpoint (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.enterHost('gateway');
  });
  afterEach(() => test.azure.setIdentityEndpointFault('none'));
  afterAll(() => test?.stop());

  async function startApp(options: Partial<AuthModuleOptions> = {}): Promise<{ error: unknown; elapsed: number }> {
    const module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          tokenRequestTimeoutInMs,
          logger: new RecordingLogger(),
          ...options,
        }),
      ],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    const started = Date.now();
    const error = await app.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    return { error, elapsed: Date.now() - started };
  }

  function onlyFailure(error: unknown) {
    expect(error).toBeInstanceOf(StartupAccessCheckError);
    const [failure, ...rest] = (error as StartupAccessCheckError).failures;
    expect(rest).toEqual([]);
    expect(failure!.context).toMatchObject({ clientId: env.AZURE_CLIENT_ID, endpoint: env.IDENTITY_ENDPOINT });
    expect(failure!.message).toContain(env.IDENTITY_ENDPOINT!);
    expect(failure!.message).toContain(env.AZURE_CLIENT_ID!);
    return failure!;
  }

  describe('when the endpoint answers garbage', () => {
    it('fails with IdentityEndpointInvalidResponse quoting what it answered', async () => {
      await test.azure.setIdentityEndpointFault('garbage');
      const { error } = await startApp();
      const failure = onlyFailure(error);
      expect(failure.code).toBe('IdentityEndpointInvalidResponse');
      expect(failure.message).toContain('answered 200 text/html that is not a token response: <html><body>not a token</body></html>');
    });
  });

  describe('when the endpoint answers 500', () => {
    it('fails with IdentityEndpointError after the bounded SDK retries', async () => {
      await test.azure.setIdentityEndpointFault('error');
      const { error, elapsed } = await startApp({ tokenRequestTimeoutInMs: 5_000 });
      const failure = onlyFailure(error);
      expect(failure.code).toBe('IdentityEndpointError');
      expect(failure.message).toContain('answered 500 after 3 attempt(s)');
      expect(elapsed).toBeLessThan(5_000);
    });
  });

  describe('when the endpoint accepts the connection and never answers', () => {
    it('fails with IdentityEndpointTimeout once the configured timeout has passed, not later', async () => {
      await test.azure.setIdentityEndpointFault('hang');
      const { error, elapsed } = await startApp();
      const failure = onlyFailure(error);
      expect(failure.code).toBe('IdentityEndpointTimeout');
      expect(elapsed).toBeGreaterThanOrEqual(tokenRequestTimeoutInMs - 50);
      // Bounded by the timeout, not by the SDK's retries (a loaded machine may add a little).
      expect(elapsed).toBeLessThan(tokenRequestTimeoutInMs + 2_500);
    });
  });

  describe('when nothing listens at the endpoint', () => {
    it('fails with IdentityEndpointUnreachable', async () => {
      await test.azure.setIdentityEndpointFault('stopped');
      const { error, elapsed } = await startApp({ tokenRequestTimeoutInMs: 5_000 });
      const failure = onlyFailure(error);
      expect(failure.code).toBe('IdentityEndpointUnreachable');
      expect(failure.message).toContain('ECONNREFUSED');
      expect(elapsed).toBeLessThan(5_000);
    });
  });

  describe('when the startup budget is shorter than a hanging request', () => {
    it('fails when the startup budget runs out', async () => {
      await test.azure.setIdentityEndpointFault('hang');
      const { error, elapsed } = await startApp({ tokenRequestTimeoutInMs: 10_000, startupTimeoutInMs: 500 });
      const failure = onlyFailure(error);
      expect(failure.code).toBe('IdentityEndpointTimeout');
      expect(failure.message).toContain('within the startup budget of 500 ms');
      expect(elapsed).toBeLessThan(3_000);
    });
  });
});
