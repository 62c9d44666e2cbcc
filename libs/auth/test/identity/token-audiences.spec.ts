import { Test, type TestingModule } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureIdentityService, isAuthError } from '../../src/index.js';
import { authMetricNames, TokenAcquisitionError } from '../../src/diagnostics/index.js';
import { TestMetrics } from '@keyless/local-azure/testing';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('AzureIdentityService against the local Entra ID (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let identity: AzureIdentityService;
  const metrics = new TestMetrics();
  const logger = new RecordingLogger();

  const signIns = (resource: string) => test.azure.auditLog.signIns({ limit: 10_000 }).filter((s) => s.resource === resource);

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.enterHost('gateway');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices', 'serviceBus', 'keyVault', 'api://keyless-gateway'],
          startupAccessCheck: false,
          meterProvider: metrics.provider,
          logger,
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

  describe('when 100 callers ask for a cold audience at once', () => {
    it('sends exactly one token request and hands all of them the same token', async () => {
      const provider = identity.tokenProvider('cognitiveServices');
      const tokens = await Promise.all(Array.from({ length: 100 }, () => provider()));
      expect(new Set(tokens).size).toBe(1);
      expect(signIns('https://cognitiveservices.azure.com')).toHaveLength(1);
      expect(await metrics.sum(authMetricNames.tokenRequests, { audience: 'cognitiveServices', trigger: 'cold', outcome: 'success' })).toBe(1);
    });

    it('serves later callers from the cache without another request', async () => {
      const provider = identity.tokenProvider('cognitiveServices');
      const hitsBefore = await metrics.sum(authMetricNames.cacheHits, { audience: 'cognitiveServices' });
      for (let i = 0; i < 50; i++) await provider();
      expect(signIns('https://cognitiveservices.azure.com')).toHaveLength(1);
      expect((await metrics.sum(authMetricNames.cacheHits, { audience: 'cognitiveServices' })) - hitsBefore).toBe(50);
      expect(await metrics.count(authMetricNames.requestDuration, { audience: 'cognitiveServices' })).toBe(1);
    });
  });

  describe.each([
    ['cognitiveServices', 'https://cognitiveservices.azure.com/.default', 'https://cognitiveservices.azure.com'],
    ['serviceBus', 'https://servicebus.azure.net//.default', 'https://servicebus.azure.net/'],
    ['keyVault', 'https://vault.azure.net/.default', 'https://vault.azure.net'],
    ['api://keyless-gateway', 'api://keyless-gateway/.default', 'api://keyless-gateway'],
  ])('when a token for %s is requested', (audience, scope, resource) => {
    it('returns a token the resource accepts, issued to the shared identity', async () => {
      const token = await identity.getToken(audience);
      const caller = await test.azure.guard.authenticate(token.token, [resource]);
      const shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
      expect(caller).toMatchObject({ clientId: shared.clientId, principalId: shared.principalId, audience: resource });
      // MSAL turns expires_on into a lifetime and back with two readings of the clock: a second boundary
      // between them shifts the result by one second.
      expect(Math.abs(token.expiresOnTimestamp - caller.expiresOn.getTime())).toBeLessThanOrEqual(1000);
    });

    it('answers an SDK client asking with the exact scope from the same cache entry', async () => {
      const viaSdkScope = await identity.credential.getToken(scope);
      expect(viaSdkScope?.token).toBe((await identity.getToken(audience)).token);
      expect(signIns(resource)).toHaveLength(1);
    });
  });

  describe('when the audience is an app-ID URI the tenant does not know', () => {
    it('fails with AudienceNotRegistered naming the audience, identity and endpoint', async () => {
      const error = await identity.getToken('api://no-such-api').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenAcquisitionError);
      expect(error).toMatchObject({
        code: 'AudienceNotRegistered',
        context: { clientId: env.AZURE_CLIENT_ID, resource: 'api://no-such-api', endpoint: env.IDENTITY_ENDPOINT },
      });
      expect((error as Error).message).toContain('AADSTS500011');
      expect((error as Error).message).toContain(env.AZURE_CLIENT_ID!);
    });
  });

  describe('when the audience has no accepted form', () => {
    it('refuses it before any request with AudienceUnknown', async () => {
      const before = test.azure.auditLog.signIns({ limit: 10_000 }).length;
      expect(() => identity.tokenProvider('cognitive')).toThrow(expect.objectContaining({ code: 'AudienceUnknown' }));
      const viaCredential = await identity.credential.getToken('https://example.com/.default').catch((e: unknown) => e);
      expect(isAuthError(viaCredential) && viaCredential.code).toBe('AudienceUnknown');
      expect(test.azure.auditLog.signIns({ limit: 10_000 })).toHaveLength(before);
    });
  });

  describe('when a token has Azure\'s 24 h lifetime', () => {
    it('schedules its background refresh at MSAL\'s refreshOn, half the lifetime', async () => {
      const token = await identity.getToken('keyVault');
      const status = identity.tokenStatus().find((s) => s.audience === 'keyVault')!;
      const lifetime = token.expiresOnTimestamp - status.lastRefreshedAt!.getTime();
      expect(lifetime).toBeGreaterThan(86_000_000);
      expect(Math.abs(status.nextRefreshAt!.getTime() - (token.expiresOnTimestamp - 43_200_000))).toBeLessThan(2_000);
    });
  });

  describe('at startup', () => {
    it('logs the mode and the client id it is bound to', () => {
      expect(logger.messages('log')).toContain(`Azure credential: managed identity, user-assigned, client id ${env.AZURE_CLIENT_ID}.`);
    });
  });
});
