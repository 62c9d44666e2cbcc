import { Test, type TestingModule } from '@nestjs/testing';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { AccessDeniedError, AuthModule, AzureClientFactory, isUnexpectedImageAnalysisResponse } from '../../src/index.js';
import { RecordingLogger } from '../support/recording.logger.js';
import { StubDataPlane } from '../support/stub-data-plane.js';

const chatAction = 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('AzureClientFactory clients against stand-in data planes (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let clients: AzureClientFactory;
  let shared: { clientId: string; principalId: string };
  let deny = false;
  const openAi = new StubDataPlane(() =>
    deny
      ? {
          status: 401,
          body: {
            error: {
              code: 'PermissionDenied',
              message: `The principal \`${shared.principalId}\` lacks the required data action \`${chatAction}\` to perform \`POST /openai/deployments/{deployment-id}/chat/completions\` operation.`,
            },
          },
        }
      : {
          status: 200,
          body: {
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 1,
            model: 'gpt-4o-mini',
            choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'hello', refusal: null } }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          },
        },
  );
  const vision = new StubDataPlane(() =>
    deny
      ? { status: 401, body: { error: { code: 'PermissionDenied', message: 'Principal does not have access to API/Operation.' } }, headers: { 'x-ms-error-code': 'PermissionDenied' } }
      : { status: 200, body: { modelVersion: '2023-10-01', metadata: { width: 100, height: 100 }, captionResult: { text: 'a cat', confidence: 0.9 } } },
  );

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.enterHost('gateway');
    shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    const [openAiEndpoint, visionEndpoint] = await Promise.all([openAi.start(test.azure.tls), vision.start(test.azure.tls)]);
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: {
            openAi: { endpoint: openAiEndpoint, resourceId: test.azure.directory.resourceId('openAi') },
            vision: { endpoint: visionEndpoint, resourceId: test.azure.directory.resourceId('vision') },
          },
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    clients = module.get(AzureClientFactory);
  });
  afterEach(() => {
    deny = false;
  });
  afterAll(async () => {
    await module?.close();
    await Promise.all([openAi.stop(), vision.stop()]);
    await test?.stop();
  });

  describe('the OpenAI client', () => {
    it('calls with the held Cognitive Services token of the shared identity', async () => {
      const completion = await clients.create('openAi', { deployment: 'gpt-4o-mini', maxRetries: 0 }).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(completion.choices[0]?.message.content).toBe('hello');
      const request = openAi.received.at(-1)!;
      expect(request.path).toBe('/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21');
      const caller = await test.azure.guard.authenticate(request.authorization, ['https://cognitiveservices.azure.com']);
      expect(caller).toMatchObject({ clientId: shared.clientId, principalId: shared.principalId });
      expect(test.azure.auditLog.signIns({ limit: 100 })).toHaveLength(1);
    });

    it('throws AccessDeniedError with principal, role, scope and fix command on 401 PermissionDenied', async () => {
      deny = true;
      const error = await clients
        .create('openAi', { deployment: 'gpt-4o-mini', maxRetries: 0 })
        .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AccessDeniedError);
      const scope = test.azure.directory.resourceId('openAi');
      expect(error).toMatchObject({
        principal: { type: 'ServicePrincipal', clientId: shared.clientId, objectId: shared.principalId, tenantId: env.AZURE_TENANT_ID },
        dataAction: chatAction,
        role: { name: 'Cognitive Services OpenAI User' },
        scope,
        fixCommand: `az role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope ${scope}`,
      });
      expect((error as AccessDeniedError).cause).toMatchObject({ status: 401, code: 'PermissionDenied' });
    });
  });

  describe('the Vision image-analysis client', () => {
    it('calls with the held Cognitive Services token over TLS', async () => {
      const response = await clients
        .create('vision')
        .path('/imageanalysis:analyze')
        .post({ body: { url: 'https://images.example/cat.png' }, queryParameters: { features: ['Caption'] }, contentType: 'application/json' });
      expect(isUnexpectedImageAnalysisResponse(response)).toBe(false);
      const request = vision.received.at(-1)!;
      expect(request.path).toBe('/computervision/imageanalysis:analyze?features=Caption&api-version=2023-10-01');
      expect((await test.azure.guard.authenticate(request.authorization, ['https://cognitiveservices.azure.com'])).clientId).toBe(shared.clientId);
    });

    it('throws AccessDeniedError naming the Cognitive Services User role on 401 PermissionDenied', async () => {
      deny = true;
      const error = await clients
        .create('vision')
        .path('/imageanalysis:analyze')
        .post({ body: { url: 'https://images.example/cat.png' }, queryParameters: { features: ['Caption'] }, contentType: 'application/json' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(AccessDeniedError);
      expect(error).toMatchObject({
        principal: { clientId: shared.clientId, objectId: shared.principalId },
        resource: 'vision',
        role: { name: 'Cognitive Services User' },
        scope: test.azure.directory.resourceId('vision'),
      });
      expect((error as AccessDeniedError).localFixCommand).toBe(
        `npm run local-azure -- role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Cognitive Services User" --scope ${test.azure.directory.resourceId('vision')}`,
      );
    });
  });

  describe('the Service Bus client', () => {
    it('takes the namespace and the shared credential', () => {
      const bus = clients.create('serviceBus', { fullyQualifiedNamespace: 'sb-keyless.servicebus.windows.net' });
      expect(bus.fullyQualifiedNamespace).toBe('sb-keyless.servicebus.windows.net');
      return bus.close();
    });

    it('refuses to be created without a namespace', () => {
      expect(() => clients.create('serviceBus')).toThrow(/resources\.serviceBus\.fullyQualifiedNamespace is not configured/);
    });
  });
});
