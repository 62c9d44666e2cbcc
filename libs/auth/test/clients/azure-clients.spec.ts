import { ServiceBusClient } from '@azure/service-bus';
import { Test, type TestingModule } from '@nestjs/testing';
import { openAiDataPlane, visionDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AuthModule, AzureClientFactory, isUnexpectedImageAnalysisResponse } from '../../src/index.js';
import { redDiscPng } from '../support/test-image.js';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('AzureClientFactory clients against the local Azure OpenAI and Vision (host "vision")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let clients: AzureClientFactory;
  let shared: { clientId: string; principalId: string };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [openAiDataPlane, visionDataPlane] });
    env = test.enterHost('vision');
    shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: {
            openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, resourceId: env.AZURE_OPENAI_RESOURCE_ID!, apiVersion: env.OPENAI_API_VERSION! },
            vision: { endpoint: env.AZURE_VISION_ENDPOINT!, resourceId: env.AZURE_VISION_RESOURCE_ID! },
          },
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    clients = module.get(AzureClientFactory);
  });
  afterAll(async () => {
    await module?.close();
    await test?.stop();
  });

  const decisions = () => test.azure.auditLog.authorizations({ limit: 100 });

  describe('the OpenAI client', () => {
    it('runs chat completions and embeddings as the shared identity with the one held token', async () => {
      const openAi = clients.create('openAi', { maxRetries: 0 });
      const chat = await openAi.chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
      const embeddings = await openAi.embeddings.create({ model: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!, input: 'trail running shoe' });
      expect(chat.choices[0]?.message.content).toBe('ok');
      expect(embeddings.data[0]?.embedding.length).toBeGreaterThan(0);
      expect(decisions().filter((d) => d.resource === 'openAi').map((d) => [d.principalId, d.decision, d.role])).toEqual([
        [shared.principalId, 'allowed', 'Cognitive Services OpenAI User'],
        [shared.principalId, 'allowed', 'Cognitive Services OpenAI User'],
      ]);
      // The startup access check's token served both calls.
      expect(test.azure.auditLog.signIns({ limit: 100 })).toHaveLength(1);
    });
  });

  describe('the Vision image-analysis client', () => {
    it('analyses an image as the shared identity over TLS', async () => {
      const response = await clients
        .create('vision', { retryOptions: { maxRetries: 0 } })
        .path('/imageanalysis:analyze')
        .post({ body: redDiscPng(), queryParameters: { features: ['Caption'] }, contentType: 'application/octet-stream' });
      expect(isUnexpectedImageAnalysisResponse(response)).toBe(false);
      if (isUnexpectedImageAnalysisResponse(response)) return;
      expect(response.body.captionResult?.text).toBe('a red circle on a white background');
      expect(decisions().find((d) => d.resource === 'vision')).toMatchObject({ principalId: shared.principalId, decision: 'allowed', role: 'Cognitive Services User' });
    });
  });

  describe('the Service Bus client', () => {
    it('is the SDK\'s own client, with the namespace and the shared credential', async () => {
      const bus = clients.create('serviceBus', { fullyQualifiedNamespace: 'sb-keyless.servicebus.windows.net' });
      expect(Object.getPrototypeOf(bus)).toBe(ServiceBusClient.prototype);
      expect(bus.fullyQualifiedNamespace).toBe('sb-keyless.servicebus.windows.net');
      await bus.close();
    });

    it('is refused without a namespace', () => {
      expect(() => clients.create('serviceBus')).toThrow(/resources\.serviceBus\.fullyQualifiedNamespace is not configured/);
    });
  });
});
