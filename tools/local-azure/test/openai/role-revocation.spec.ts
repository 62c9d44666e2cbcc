import vision from '@azure-rest/ai-vision-image-analysis';
import { AuthenticationError, type AzureOpenAI } from 'openai';
import { dataActions, findRole } from '../../src/rbac/built-in-roles.js';
import type { TestAzure } from '../../src/testing/index.js';
import { visionDataPlane } from '../../src/vision/vision-data-plane.js';
import { Canvas, colours } from '../vision/test-images.js';
import { startOpenAi } from './support.js';

const createVisionClient = vision.default;

// Roles are checked on every request (tokens carry no roles), so a revocation shows on the next call
// without a new token — unlike Azure, where it can take minutes to propagate.
describe('Revoking roles of the shared identity', () => {
  let test: TestAzure;
  let principalId: string;
  let openAi: AzureOpenAI;
  let analyze: () => PromiseLike<{ status: string; body: unknown }>;

  beforeAll(async () => {
    const started = await startOpenAi({ otherDataPlanes: [visionDataPlane] });
    ({ test, openAi } = started);
    const { env, credential } = started;
    principalId = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!.principalId;
    const visionClient = createVisionClient(env.AZURE_VISION_ENDPOINT!, credential, { retryOptions: { maxRetries: 0 } });
    const png = new Canvas(64, 64).circle(32, 32, 20, colours.blue).png();
    analyze = () => visionClient.path('/imageanalysis:analyze').post({ body: png, queryParameters: { features: ['Caption'] }, contentType: 'application/octet-stream' });
  });
  afterAll(() => test.stop());

  const chat = () => openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
  const embed = () => openAi.embeddings.create({ model: 'text-embedding-3-small', input: 'trail shoe' });

  it('lets chat, embeddings and image analysis through while the access file grants them', async () => {
    expect((await chat()).choices[0]!.message.content).toBe('ok');
    expect((await embed()).data).toHaveLength(1);
    expect((await analyze()).status).toBe('200');
  });

  describe('when Cognitive Services OpenAI User is removed', () => {
    beforeAll(() => {
      const removed = test.azure.roleAssignments.delete({ principalId, role: findRole('Cognitive Services OpenAI User')!, scope: test.azure.directory.resourceId('openAi') });
      expect(removed).toHaveLength(1);
    });

    it.each([
      ['chat completions', chat, dataActions.openAiChatCompletions, 'POST /openai/deployments/{deployment-id}/chat/completions'],
      ['embeddings', embed, dataActions.openAiEmbeddings, 'POST /openai/deployments/{deployment-id}/embeddings'],
    ] as const)('denies %s on the next call with 401 PermissionDenied naming principal and data action', async (_name, call, action, operation) => {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error).toMatchObject({
        status: 401,
        code: 'PermissionDenied',
        message: `401 The principal \`${principalId}\` lacks the required data action \`${action}\` to perform \`${operation}\` operation.`,
      });
    });

    it('leaves Vision untouched: it needs Cognitive Services User, which is still assigned', async () => {
      expect((await analyze()).status).toBe('200');
    });

    it('records the denials in the authorization log', () => {
      const denied = test.azure.auditLog.authorizations({ limit: 50 }).filter((a) => a.resource === 'openAi' && a.decision === 'denied');
      expect(denied.map((a) => a.dataAction)).toEqual(expect.arrayContaining([dataActions.openAiChatCompletions, dataActions.openAiEmbeddings]));
    });
  });

  describe('when Vision has only Cognitive Services OpenAI User', () => {
    beforeAll(() => {
      const vision = test.azure.directory.resourceId('vision');
      test.azure.roleAssignments.delete({ principalId, role: findRole('Cognitive Services User')!, scope: vision });
      test.azure.roleAssignments.create({ principalId, role: findRole('Cognitive Services OpenAI User')!, scope: vision, source: 'cli' });
    });

    it('denies image analysis with 401 PermissionDenied: the OpenAI role does not grant Vision', async () => {
      const response = await analyze();
      expect(response.status).toBe('401');
      expect(response.body).toEqual({
        error: {
          code: 'PermissionDenied',
          message: `The principal \`${principalId}\` lacks the required data action \`${dataActions.visionAnalyze}\` to perform \`POST /computervision/imageanalysis:analyze\` operation.`,
        },
      });
    });
  });
});
