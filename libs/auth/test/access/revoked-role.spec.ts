import { Test, type TestingModule } from '@nestjs/testing';
import { findRole, openAiDataPlane, visionDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { AccessDeniedError, AuthModule, AzureClientFactory, isAccessDeniedError } from '../../src/index.js';
import { RecordingLogger } from '../support/recording.logger.js';
import { redDiscPng } from '../support/test-image.js';

/**
 * Applies a printed `npm run local-azure -- role assignment create …` command the way the CLI does:
 * its arguments, posted to the local Azure's admin API (`--assignee-object-id` is the assignee).
 */
async function applyFix(test: TestAzure, command: string): Promise<Response> {
  const args = [...command.matchAll(/--([\w-]+) (?:"([^"]*)"|(\S+))/g)].reduce<Record<string, string>>((acc, m) => ({ ...acc, [m[1]!]: m[2] ?? m[3]! }), {});
  expect(command.startsWith('npm run local-azure -- role assignment create ')).toBe(true);
  expect(args['assignee-principal-type']).toBe('ServicePrincipal');
  return fetch(`${test.azure.endpoints.management}/roleAssignments`, {
    method: 'POST',
    // As the CLI does it: signed in as the operator (Owner of the subscription).
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await test.operatorToken()}` },
    body: JSON.stringify({ assignee: args['assignee-object-id'], role: args.role, scope: args.scope }),
  });
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// Roles are checked on every call locally, so a revocation shows on the next call (Azure: minutes).
describe('AccessDeniedError after a role of the shared identity is revoked (host "recommendation")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let clients: AzureClientFactory;
  let shared: { clientId: string; principalId: string };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [openAiDataPlane, visionDataPlane] });
    env = test.enterHost('recommendation');
    shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['cognitiveServices'],
          resources: {
            openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, resourceId: env.AZURE_OPENAI_RESOURCE_ID! },
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

  const chat = () =>
    clients.create('openAi', { maxRetries: 0 }).chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
  const embed = () => clients.create('openAi', { maxRetries: 0 }).embeddings.create({ model: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!, input: 'trail shoe' });
  const analyze = () =>
    Promise.resolve(
      clients
        .create('vision', { retryOptions: { maxRetries: 0 } })
        .path('/imageanalysis:analyze')
        .post({ body: redDiscPng(), queryParameters: { features: ['Caption'] }, contentType: 'application/octet-stream' }),
    );

  describe('when Cognitive Services OpenAI User is revoked on the OpenAI account', () => {
    let denied: AccessDeniedError;

    beforeAll(async () => {
      expect((await chat()).choices[0]?.message.content).toBe('ok');
      const removed = test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Cognitive Services OpenAI User')!, scope: env.AZURE_OPENAI_RESOURCE_ID! });
      expect(removed).toHaveLength(1);
      const error = await chat().catch((e: unknown) => e);
      expect(isAccessDeniedError(error)).toBe(true);
      denied = error as AccessDeniedError;
    });

    it('names the principal from the token, the data action, the role and the scope', () => {
      expect(denied).toMatchObject({
        code: 'AccessDenied',
        resource: 'openAi',
        principal: { type: 'ServicePrincipal', clientId: shared.clientId, objectId: shared.principalId, tenantId: env.AZURE_TENANT_ID },
        dataAction: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
        role: { name: 'Cognitive Services OpenAI User', id: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' },
        scope: env.AZURE_OPENAI_RESOURCE_ID,
      });
      expect(denied.cause).toMatchObject({ status: 401, code: 'PermissionDenied' });
    });

    it('prints the exact az command that fixes it, and its local Azure twin', () => {
      const args = `role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope ${env.AZURE_OPENAI_RESOURCE_ID}`;
      expect(denied.fixCommand).toBe(`az ${args}`);
      expect(denied.localFixCommand).toBe(`npm run local-azure -- ${args}`);
      expect(denied.message).toContain(`identity ${shared.clientId} (object id ${shared.principalId}) lacks the data action`);
      expect(denied.message).toContain('New role assignments can take several minutes to apply in Azure');
    });

    it('names the embeddings data action for an embeddings call', async () => {
      const error = await embed().catch((e: unknown) => e);
      expect(error).toMatchObject({ dataAction: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action', role: { name: 'Cognitive Services OpenAI User' } });
    });

    it('restores access once the printed command is applied', async () => {
      const response = await applyFix(test, denied.localFixCommand);
      expect(response.status).toBe(201);
      expect((await chat()).choices[0]?.message.content).toBe('ok');
    });
  });

  describe('when Cognitive Services User is revoked on the Vision account', () => {
    let denied: AccessDeniedError;

    beforeAll(async () => {
      expect((await analyze()).status).toBe('200');
      const removed = test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Cognitive Services User')!, scope: env.AZURE_VISION_RESOURCE_ID! });
      expect(removed).toHaveLength(1);
      const error = await analyze().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AccessDeniedError);
      denied = error as AccessDeniedError;
    });

    it('names the analyze data action, Cognitive Services User and the Vision account', () => {
      expect(denied).toMatchObject({
        resource: 'vision',
        principal: { clientId: shared.clientId, objectId: shared.principalId },
        dataAction: 'Microsoft.CognitiveServices/accounts/ComputerVision/imageanalysis:analyze/action',
        role: { name: 'Cognitive Services User', id: 'a97b65f3-24c7-4388-baec-2e87135dc908' },
        scope: env.AZURE_VISION_RESOURCE_ID,
        fixCommand: `az role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Cognitive Services User" --scope ${env.AZURE_VISION_RESOURCE_ID}`,
      });
    });

    it('restores access once the printed command is applied', async () => {
      expect((await applyFix(test, denied.localFixCommand)).status).toBe(201);
      expect((await analyze()).status).toBe('200');
    });
  });
});
