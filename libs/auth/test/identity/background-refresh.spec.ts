import { Test, type TestingModule } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureIdentityService } from '../../src/index.js';
import { authMetricNames } from '../../src/diagnostics/index.js';
import { TestMetrics } from '@keyless/local-azure/testing';

const tokenLifetimeSeconds = 60;

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('AzureIdentityService background refresh (host "recommendation", 60 s tokens)', () => {
  let test: TestAzure;
  let module: TestingModule;
  let identity: AzureIdentityService;
  const metrics = new TestMetrics();

  beforeAll(async () => {
    test = await startTestAzure({ config: { tokenLifetimeSeconds } });
    const env = test.enterHost('recommendation');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          meterProvider: metrics.provider,
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    identity = module.get(AzureIdentityService);
  });
  afterAll(async () => {
    await module?.close();
    await test?.stop();
  });

  describe('when callers keep calling across the refresh point', () => {
    it('refreshes in the background: every call gets a token the resource accepts and none waits for one', async () => {
      const provider = identity.tokenProvider('cognitiveServices');
      const served = new Set<string>();
      const failures: string[] = [];
      let calls = 0;
      let newTokenSeenAt: number | undefined;
      const deadline = Date.now() + 50_000;
      // Steady load: one call every ~10 ms until a refreshed token has been in use for a second.
      while (Date.now() < deadline && (newTokenSeenAt === undefined || Date.now() - newTokenSeenAt < 1_000)) {
        const token = await provider();
        calls += 1;
        try {
          await test.azure.guard.authenticate(token, ['https://cognitiveservices.azure.com']);
        } catch (error) {
          failures.push((error as Error).message);
        }
        if (!served.has(token)) {
          served.add(token);
          if (served.size === 2) newTokenSeenAt = Date.now();
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }

      expect(failures).toEqual([]);
      expect(served.size).toBe(2);
      expect(await metrics.sum(authMetricNames.tokenRequests, { trigger: 'cold' })).toBe(1);
      expect(await metrics.sum(authMetricNames.tokenRequests, { trigger: 'refresh', outcome: 'success' })).toBe(1);
      // No caller ever found the cache without a servable token after the cold start.
      expect(await metrics.sum(authMetricNames.tokenRequests, { trigger: 'expired' })).toBe(0);
      expect(await metrics.sum(authMetricNames.cacheHits)).toBe(calls);
      const signIns = test.azure.auditLog.signIns({ limit: 100 }).filter((s) => s.resource === 'https://cognitiveservices.azure.com');
      expect(signIns.map((s) => s.outcome)).toEqual(['success', 'success']);
    }, 60_000);

    it('reports the new expiry and the next refresh time in the token status', () => {
      const [status] = identity.tokenStatus();
      expect(status).toMatchObject({ audience: 'cognitiveServices', valid: true, consecutiveFailures: 0 });
      const lifetime = status!.expiresOn!.getTime() - status!.lastRefreshedAt!.getTime();
      expect(lifetime).toBeGreaterThan((tokenLifetimeSeconds - 2) * 1000);
      // Tokens of 5 min or less are not cached by MSAL: the refresh is due halfway through the token's life, counted
      // from when it was asked for — a moment before lastRefreshedAt, so the refresh time sits at or just before the
      // midpoint of lastRefreshedAt and expiresOn (by half the request's duration; expiry is in whole seconds).
      const halfway = (status!.lastRefreshedAt!.getTime() + status!.expiresOn!.getTime()) / 2;
      const early = halfway - status!.nextRefreshAt!.getTime();
      expect(early).toBeGreaterThanOrEqual(0);
      expect(early).toBeLessThan(2_000);
    });
  });
});
