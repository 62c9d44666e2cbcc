import { Test, type TestingModule } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { AuthHealthIndicator, AuthModule, AzureIdentityService } from '../../src/index.js';
import { authMetricNames } from '../../src/diagnostics/index.js';
import { TestMetrics } from '@keyless/local-azure/testing';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('AzureIdentityService when the identity endpoint stops while tokens are valid (host "vision", 60 s tokens)', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let identity: AzureIdentityService;
  let health: AuthHealthIndicator;
  const metrics = new TestMetrics();
  const logger = new RecordingLogger();
  const resource = 'https://servicebus.azure.net/';

  beforeAll(async () => {
    test = await startTestAzure({ config: { tokenLifetimeSeconds: 60 } });
    env = test.enterHost('vision');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['serviceBus'],
          refreshRetryDelayInMs: 1_000,
          maxRetries: 1,
          meterProvider: metrics.provider,
          logger,
        }),
      ],
    }).compile();
    await module.init();
    identity = module.get(AzureIdentityService);
    health = module.get(AuthHealthIndicator);
  });
  afterAll(async () => {
    await module?.close();
    await test?.stop();
  });

  it('is up after the startup access check', () => {
    expect(health.isHealthy().auth).toMatchObject({ status: 'up', identity: { mode: 'managed-identity', clientId: env.AZURE_CLIENT_ID } });
  });

  describe('when the background refresh finds the endpoint stopped', () => {
    let tokenBefore: string;

    it('keeps serving the valid token to every call and reports the failure in health, metrics and log', async () => {
      tokenBefore = (await identity.getToken('serviceBus')).token;
      await test.azure.setIdentityEndpointFault('stopped');
      const provider = identity.tokenProvider('serviceBus');
      const rejected: string[] = [];
      const failing = await waitFor(
        'a failed refresh while calls continue',
        async () => {
          const token = await provider();
          await test.azure.guard.authenticate(token, [resource]).catch((e: Error) => rejected.push(e.message));
          const result = health.isHealthy().auth;
          return result.status === 'degraded' ? result : undefined;
        },
        45_000,
        20,
      );
      expect(rejected).toEqual([]);
      expect(await provider()).toBe(tokenBefore);
      expect(failing).toMatchObject({
        status: 'degraded',
        lastFailure: { audience: 'serviceBus', code: 'IdentityEndpointUnreachable' },
        audiences: [{ audience: 'serviceBus', valid: true, consecutiveFailures: 1 }],
      });
      expect(failing.lastFailure.message).toContain(env.IDENTITY_ENDPOINT);
      expect(failing.lastFailure.message).toContain(env.AZURE_CLIENT_ID);
      expect(await metrics.sum(authMetricNames.failures, { audience: 'serviceBus', code: 'IdentityEndpointUnreachable' })).toBe(1);
      expect(logger.messages('warn').join('\n')).toMatch(/Token refresh for serviceBus failed \[IdentityEndpointUnreachable\]; still serving the current token/);
    }, 60_000);

    it('recovers by itself once the endpoint is back: a new token, health up again', async () => {
      await test.azure.setIdentityEndpointFault('none');
      const recovered = await waitFor('health up after the endpoint is back', () => {
        const result = health.isHealthy().auth;
        return result.status === 'up' ? result : undefined;
      });
      expect(recovered.audiences).toEqual([expect.objectContaining({ audience: 'serviceBus', valid: true, consecutiveFailures: 0 })]);
      // The last failure stays visible for operators after recovery.
      expect(recovered.lastFailure).toMatchObject({ code: 'IdentityEndpointUnreachable' });
      expect((await identity.getToken('serviceBus')).token).not.toBe(tokenBefore);
      expect(await metrics.sum(authMetricNames.tokenRequests, { audience: 'serviceBus', trigger: 'retry', outcome: 'success' })).toBe(1);
    }, 20_000);
  });
});
