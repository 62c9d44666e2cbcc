import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import vision from '@azure-rest/ai-vision-image-analysis';
import { AzureOpenAI, InternalServerError, RateLimitError } from 'openai';
import { InvalidFaultError } from '../../src/faults/local-faults.js';
import { openAiDataPlane } from '../../src/openai/openai-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { visionDataPlane } from '../../src/vision/vision-data-plane.js';
import { Canvas, colours } from '../vision/test-images.js';

const createVisionClient = vision.default;
const { isUnexpected } = vision;

// The faults that live outside the Service Bus broker, seen through the unmodified SDKs: what a service gets
// while the fault is held, and that `none` heals at once.
describe('Injected faults of the identity endpoint, Azure OpenAI and Azure AI Vision', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let credential: ManagedIdentityCredential;
  let openai: AzureOpenAI;
  let visionClient: ReturnType<typeof createVisionClient>;
  const image = new Canvas(120, 90).circle(60, 45, 30, colours.red).png();

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [openAiDataPlane, visionDataPlane] });
    env = test.enterHost('recommendation');
    credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    openai = new AzureOpenAI({ azureADTokenProvider: getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default'), maxRetries: 0, timeout: 10_000 });
    visionClient = createVisionClient(env.AZURE_VISION_ENDPOINT!, credential, { retryOptions: { maxRetries: 0 } });
  });
  afterEach(() => test.azure.faults.clear());
  afterAll(() => test.stop());

  const embed = () => openai.embeddings.create({ model: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!, input: 'a red running shoe' });
  const analyze = () =>
    visionClient.path('/imageanalysis:analyze').post({ body: image, queryParameters: { features: ['Caption'] }, contentType: 'application/octet-stream' });

  describe('openai', () => {
    it("answers 429 with Azure OpenAI's rate-limit body and a retry-after, until healed", async () => {
      await test.azure.faults.set('openai', { mode: '429' });
      const error = (await embed().catch((e: unknown) => e)) as RateLimitError;
      expect(error).toBeInstanceOf(RateLimitError);
      expect(error.headers.get('retry-after')).toBe('1');
      expect(error.message).toMatch(/Embeddings_Create Operation .* exceeded token rate limit.*retry after 1 second/);
      await test.azure.faults.set('openai', { mode: 'none' });
      expect((await embed()).data[0]!.embedding.length).toBeGreaterThan(0);
    });

    it('answers 500 with a server_error body to chat and embeddings alike', async () => {
      await test.azure.faults.set('openai', { mode: '500' });
      const chat = await openai.chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(chat).toBeInstanceOf(InternalServerError);
      expect((chat as InternalServerError).error).toMatchObject({ type: 'server_error' });
      expect(await embed().catch((e: unknown) => e)).toBeInstanceOf(InternalServerError);
    });

    it('keeps authentication first: a request without a token is still a 401, not the fault', async () => {
      await test.azure.faults.set('openai', { mode: '500' });
      const response = await fetch(`${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/x/embeddings?api-version=2024-10-21`, { method: 'POST', body: '{}' });
      expect(response.status).toBe(401);
    });
  });

  describe('vision', () => {
    it("answers 429 with Vision's body, Retry-After and x-ms-error-code, until healed", async () => {
      await test.azure.faults.set('vision', { mode: '429' });
      const throttled = await analyze();
      expect(throttled.status).toBe('429');
      expect(throttled.headers['retry-after']).toBe('1');
      expect(throttled.headers['x-ms-error-code']).toBe('429');
      expect(throttled.body).toEqual({ error: { code: '429', message: 'Rate limit is exceeded. Try again in 1 seconds.' } });
      await test.azure.faults.set('vision', { mode: 'none' });
      const healed = await analyze();
      expect(isUnexpected(healed)).toBe(false);
    });

    it('answers 500 InternalServerError', async () => {
      await test.azure.faults.set('vision', { mode: '500' });
      const failed = await analyze();
      expect(failed.status).toBe('500');
      expect(failed.body).toMatchObject({ error: { code: 'InternalServerError' } });
    });
  });

  describe('identity-endpoint delay', () => {
    it('answers with a valid token, only after the delay', async () => {
      await test.azure.faults.set('identity-endpoint', { mode: 'delay', delayInMs: 1500 });
      const started = Date.now();
      // A resource this process has not asked for yet, so MSAL's cache cannot answer.
      const token = await credential.getToken('https://vault.azure.net/.default');
      expect(token.token.split('.')).toHaveLength(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    });
  });

  describe('the catalog of faults', () => {
    it('lists every target, healthy until set, with what the mode does', async () => {
      await test.azure.faults.set('openai', { mode: '429' });
      expect(test.azure.faults.active()).toEqual([expect.objectContaining({ target: 'openai', mode: '429', effect: expect.stringMatching(/retry-after/) })]);
      expect(test.azure.faults.list().map((f) => f.target)).toEqual(expect.arrayContaining(['identity-endpoint', 'openai', 'vision']));
    });

    it.each([
      ['an unknown target', 'dns', { mode: 'error' }, /Unknown fault target "dns"/],
      ['an unknown mode', 'openai', { mode: '503' }, /no mode "503". Modes: none, 429, 500/],
      ['a delay on a mode without one', 'vision', { mode: '429', delayInMs: 5 }, /only to the delay mode/],
      ['a negative delay', 'identity-endpoint', { mode: 'delay', delayInMs: -1 }, /whole number of milliseconds/],
    ])('refuses %s, naming what is allowed', async (_case, target, setting, message) => {
      await expect(test.azure.faults.set(target, setting)).rejects.toThrow(message);
      await expect(test.azure.faults.set(target, setting)).rejects.toBeInstanceOf(InvalidFaultError);
    });
  });
});
