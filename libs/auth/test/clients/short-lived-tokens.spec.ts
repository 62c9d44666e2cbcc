import { Test, type TestingModule } from '@nestjs/testing';
import { dataPlanes } from '@keyless/local-azure';
import { startTestAzure, TestMetrics, type TestAzure } from '@keyless/local-azure/testing';
import { AuthModule, authMetricNames, AzureClientFactory, type ServiceBusClient } from '../../src/index.js';
import { RecordingLogger } from '../support/recording.logger.js';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// With 60-second tokens (the local Azure's shortest) the Service Bus SDK would schedule each link's renewal
// 2 minutes before expiry — in the past — and put a token on $cbs again and again (every put-token asks the
// credential, so the cache counts it). The factory's client must renew at a sane pace instead.
describe('Service Bus links with 60-second tokens (host "recommendation")', () => {
  let test: TestAzure;
  let module: TestingModule;
  let bus: ServiceBusClient;
  const metrics = new TestMetrics();

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes, config: { tokenLifetimeSeconds: 60 } });
    const env = test.enterHost('recommendation');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['serviceBus'],
          resources: { serviceBus: { fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE! } },
          meterProvider: metrics.provider,
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    bus = module.get(AzureClientFactory).create('serviceBus');
  });
  afterAll(async () => {
    await bus?.close();
    await module?.close();
    await test?.stop();
  });

  it('asks for the Service Bus token a handful of times while links stay open, not in a loop', async () => {
    const sender = bus.createSender('recommendation-requests');
    const receiver = bus.createReceiver('recommendation-requests', { receiveMode: 'receiveAndDelete' });
    await sender.sendMessages({ body: 'warm-up' });
    await receiver.receiveMessages(1, { maxWaitTimeInMs: 2_000 });
    const before = await metrics.sum(authMetricNames.cacheHits, { audience: 'serviceBus' });
    // Long enough for hundreds of put-tokens per link if renewal were immediate; far shorter than half a token's life.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const during = (await metrics.sum(authMetricNames.cacheHits, { audience: 'serviceBus' })) - before;
    expect(during).toBeLessThan(10);
    await sender.sendMessages({ body: 'still works' });
    expect((await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 })).map((m) => m.body)).toEqual(['still works']);
  });
});
