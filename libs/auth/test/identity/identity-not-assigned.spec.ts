import { Test } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule } from '../../src/index.js';
import { StartupAccessCheckError, TokenAcquisitionError } from '../../src/diagnostics/index.js';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('Startup access check on a host the identity is not assigned to (host "batch")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let sharedClientId: string;

  beforeAll(async () => {
    // "batch" carries only id-storefront; the service is configured with id-keyless's client id.
    test = await startTestAzure({ config: { hosts: { batch: { userAssigned: ['id-storefront'] } } } });
    env = test.enterHost('batch');
    sharedClientId = test.azure.directory.userAssignedIdentity('id-keyless')!.clientId;
  });
  afterAll(() => test?.stop());

  it('fails app start-up with IdentityNotAssigned naming identity and endpoint, well within the timeout', async () => {
    const module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: sharedClientId,
          audiences: ['cognitiveServices', 'serviceBus'],
          tokenRequestTimeoutInMs: 8_000,
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    const started = Date.now();
    const error = await app.init().catch((e: unknown) => e);
    const elapsed = Date.now() - started;

    expect(error).toBeInstanceOf(StartupAccessCheckError);
    const failures = (error as StartupAccessCheckError).failures;
    expect(failures.map((f) => [f.code, f.context.resource])).toEqual([
      ['IdentityNotAssigned', 'https://cognitiveservices.azure.com'],
      ['IdentityNotAssigned', 'https://servicebus.azure.net/'],
    ]);
    expect(failures[0]).toBeInstanceOf(TokenAcquisitionError);
    expect(failures[0]!.context).toEqual({ mode: 'managed-identity', clientId: sharedClientId, resource: 'https://cognitiveservices.azure.com', endpoint: env.IDENTITY_ENDPOINT });
    const message = (error as Error).message;
    expect(message).toContain(`The user-assigned identity ${sharedClientId} is not assigned to this host`);
    expect(message).toContain(env.IDENTITY_ENDPOINT!);
    expect(message).toContain('Unable to load the proper Managed Identity.');
    // A 400 is not retried: no 20-second retry loop hides the diagnostic.
    expect(elapsed).toBeLessThan(8_000);
    const refused = test.azure.auditLog.signIns({ limit: 100 }).filter((s) => s.outcome === 'failure');
    expect(refused).toHaveLength(2);
  });

  it('starts on the same host with the identity that is assigned to it, warning that the process now has two', async () => {
    const logger = new RecordingLogger();
    const module = await Test.createTestingModule({
      imports: [AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: ['api://keyless-gateway'], logger })],
    }).compile();
    const app = module.createNestApplication({ logger: false });
    await expect(app.init()).resolves.toBe(app);
    await app.close();
    expect(logger.messages('warn')).toEqual([expect.stringContaining(`A second identity in one process (already bound: managed identity, user-assigned, client id ${sharedClientId})`)]);
  });
});
