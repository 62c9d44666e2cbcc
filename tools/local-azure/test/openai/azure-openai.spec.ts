import { randomBytes } from 'node:crypto';
import { getBearerTokenProvider, type ManagedIdentityCredential } from '@azure/identity';
import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import OpenAI, { AuthenticationError, AzureOpenAI, BadRequestError, NotFoundError, RateLimitError } from 'openai';
import type { TestAzure } from '../../src/testing/index.js';
import { startOpenAi } from './support.js';

const catalogPrompt = `The shopper searched for "waterproof trail running shoes".
Candidate products:
- id: p-1 | name: Storm Trail Runner | category: footwear | price: $129.90 | tags: running, trail, waterproof
- id: p-2 | name: Burr Coffee Grinder | category: kitchen | price: $79.00 | tags: coffee, grinder
- id: p-3 | name: Road Racer 3 | category: footwear | price: $99.00 | tags: running, road
Pick the top 2 and explain briefly.`;

// A quota small enough that one large embeddings request spends it: 6000 tokens per minute = 100 per second.
const throttledTokensPerMinute = 6000;

describe('Local Azure OpenAI with the unmodified openai AzureOpenAI client', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let credential: ManagedIdentityCredential;
  let tokenProvider: () => Promise<string>;
  let client: AzureOpenAI;

  beforeAll(async () => {
    // Endpoint and api-version of the client come from the host's env file, as in Azure.
    ({ test, env, credential, tokenProvider, openAi: client } = await startOpenAi({
      deployments: {
        'gpt-4o-mini': { model: 'gpt-4o-mini', tokensPerMinute: 1_000_000 },
        'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 10_000_000 },
        'ada-002': { model: 'text-embedding-ada-002', tokensPerMinute: 100_000 },
        'throttled-a': { model: 'text-embedding-3-small', tokensPerMinute: throttledTokensPerMinute, capability: 'embeddings' },
        'throttled-b': { model: 'text-embedding-3-small', tokensPerMinute: throttledTokensPerMinute, capability: 'embeddings' },
      },
      client: { timeout: 10_000 },
    }));
  });
  afterAll(() => test.stop());

  const chatDeployment = (): string => env.AZURE_OPENAI_CHAT_DEPLOYMENT!;
  const embeddingsDeployment = (): string => env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT!;

  it('writes the endpoint, deployments, api-version and resource id into the host env file', () => {
    expect(env).toMatchObject({
      AZURE_OPENAI_ENDPOINT: expect.stringMatching(/^https:\/\/localhost:\d+$/),
      AZURE_OPENAI_CHAT_DEPLOYMENT: 'gpt-4o-mini',
      AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: 'text-embedding-3-small',
      OPENAI_API_VERSION: '2024-10-21',
      AZURE_OPENAI_RESOURCE_ID: `/subscriptions/${test.azure.directory.subscriptionId}/resourceGroups/rg-keyless-local/providers/Microsoft.CognitiveServices/accounts/oai-keyless-local`,
    });
  });

  describe('chat completions', () => {
    it('answers a product prompt by quoting the listed items, with usage from the real tokenizer', async () => {
      const completion = await client.chat.completions.create({
        model: chatDeployment(),
        messages: [
          { role: 'system', content: 'You are a shopping assistant. Only recommend listed products.' },
          { role: 'user', content: catalogPrompt },
        ],
      });
      const content = completion.choices[0]!.message.content!;
      expect(content).toContain('Storm Trail Runner (footwear, $129.90)');
      expect(content).toContain('"waterproof"');
      expect(content).not.toContain('Coffee Grinder');
      expect(completion).toMatchObject({ object: 'chat.completion', model: 'gpt-4o-mini', choices: [{ finish_reason: 'stop', message: { role: 'assistant' } }] });
      expect(completion.usage!.completion_tokens).toBe(countO200k(content));
      expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
    });

    it('gives the same reply to the same messages', async () => {
      const ask = (): Promise<string | null> =>
        client.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: catalogPrompt }] }).then((c) => c.choices[0]!.message.content);
      expect(await ask()).toBe(await ask());
    });

    it('streams the same reply as server-sent events in Azure chunk shape, with usage last', async () => {
      const whole = await client.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: catalogPrompt }] });
      const stream = await client.chat.completions.create({
        model: chatDeployment(),
        messages: [{ role: 'user', content: catalogPrompt }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      expect(text).toBe(whole.choices[0]!.message.content);
      expect(chunks[0]!.choices).toEqual([]);
      expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(5);
      expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: whole.usage!.prompt_tokens, completion_tokens: whole.usage!.completion_tokens, total_tokens: whole.usage!.total_tokens });
    });

    it('stops at max_tokens with finish_reason "length"', async () => {
      const completion = await client.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: catalogPrompt }], max_tokens: 7 });
      expect(completion.choices[0]!.finish_reason).toBe('length');
      expect(completion.usage!.completion_tokens).toBe(7);
    });

    it('replies a JSON object in JSON mode', async () => {
      const completion = await client.chat.completions.create({
        model: chatDeployment(),
        response_format: { type: 'json_object' },
        messages: [{ role: 'user', content: `${catalogPrompt}\nAnswer in JSON.` }],
      });
      const reply = JSON.parse(completion.choices[0]!.message.content!) as { recommendations: { id: string; name: string; price: string }[] };
      expect(reply.recommendations.map((r) => r.id)).toEqual(['p-1', 'p-3']);
      expect(reply.recommendations[0]).toMatchObject({ name: 'Storm Trail Runner', price: '$129.90' });
    });

    it('is served on the v1 route with the deployment as model and no api-version', async () => {
      const v1 = new OpenAI({ baseURL: `${env.AZURE_OPENAI_ENDPOINT}/openai/v1/`, apiKey: tokenProvider, maxRetries: 0 });
      const completion = await v1.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: 'Reply with exactly: pong' }] });
      expect(completion.choices[0]!.message.content).toBe('pong');
      const embedding = await v1.embeddings.create({ model: embeddingsDeployment(), input: 'trail shoe' });
      expect(embedding.data[0]!.embedding).toHaveLength(1536);
    });
  });

  describe('embeddings', () => {
    it('returns unit vectors of 1536 floats, base64 on the wire by default and decoded by the SDK', async () => {
      const response = await client.embeddings.create({ model: embeddingsDeployment(), input: ['Trail running shoe', 'Coffee grinder'] });
      expect(response.data.map((d) => d.index)).toEqual([0, 1]);
      for (const { embedding } of response.data) {
        expect(embedding).toHaveLength(1536);
        expect(Math.hypot(...embedding)).toBeCloseTo(1, 5);
      }
      expect(response.usage).toEqual({ prompt_tokens: encodeCl100k('Trail running shoe').length + encodeCl100k('Coffee grinder').length, total_tokens: expect.any(Number) });
    });

    it('returns the same numbers as float JSON when encoding_format is "float"', async () => {
      const [base64, float] = await Promise.all([
        client.embeddings.create({ model: embeddingsDeployment(), input: 'Merino wool socks' }),
        client.embeddings.create({ model: embeddingsDeployment(), input: 'Merino wool socks', encoding_format: 'float' }),
      ]);
      expect(float.data[0]!.embedding).toEqual(base64.data[0]!.embedding);
    });

    it('places a running shoe closer to a trail sneaker than to a coffee grinder', async () => {
      const { data } = await client.embeddings.create({ model: embeddingsDeployment(), input: ['Running shoe', 'Trail sneaker', 'Coffee grinder'] });
      const [shoe, sneaker, grinder] = data.map((d) => d.embedding);
      expect(dot(shoe!, sneaker!)).toBeGreaterThan(dot(shoe!, grinder!) + 0.2);
    });

    it('honours dimensions and accepts token arrays', async () => {
      const short = await client.embeddings.create({ model: embeddingsDeployment(), input: 'Trail sneaker', dimensions: 256 });
      expect(short.data[0]!.embedding).toHaveLength(256);
      const tokens = await client.embeddings.create({ model: embeddingsDeployment(), input: [encodeCl100k('Trail sneaker')], dimensions: 256 });
      expect(tokens.data[0]!.embedding).toEqual(short.data[0]!.embedding);
    });
  });

  describe('when the request is wrong', () => {
    it('refuses an unknown deployment with NotFoundError DeploymentNotFound', async () => {
      const error = await client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ status: 404, code: 'DeploymentNotFound' });
    });

    it('refuses chat on an embeddings deployment with BadRequestError OperationNotSupported', async () => {
      const error = await client.chat.completions.create({ model: embeddingsDeployment(), messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error).toMatchObject({ status: 400, code: 'OperationNotSupported' });
    });

    it('refuses invalid parameters with BadRequestError naming the parameter', async () => {
      const empty = await client.chat.completions.create({ model: chatDeployment(), messages: [] }).catch((e: unknown) => e);
      expect(empty).toBeInstanceOf(BadRequestError);
      expect(empty).toMatchObject({ param: 'messages', type: 'invalid_request_error' });
      const json = await client.chat.completions
        .create({ model: chatDeployment(), response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect(json).toMatchObject({ status: 400, param: 'messages' });
      const dimensions = await client.embeddings.create({ model: 'ada-002', input: 'x', dimensions: 256 }).catch((e: unknown) => e);
      expect(dimensions).toMatchObject({ status: 400, param: 'dimensions' });
      const blank = await client.embeddings.create({ model: embeddingsDeployment(), input: '' }).catch((e: unknown) => e);
      expect(blank).toMatchObject({ status: 400, param: 'input' });
    });

    it('refuses an api-version Azure does not know', async () => {
      const future = new AzureOpenAI({ azureADTokenProvider: tokenProvider, apiVersion: '2099-01-01', maxRetries: 0 });
      const error = await future.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error).toMatchObject({ code: 'BadRequest', message: '400 API version not supported' });
    });

    it('answers malformed JSON, a wrong content type and an oversized body with Azure statuses', async () => {
      const url = `${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/${chatDeployment()}/chat/completions?api-version=2024-10-21`;
      const headers = { authorization: `Bearer ${await tokenProvider()}` };
      const malformed = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"messages": [' });
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringContaining('could not parse the JSON body') } });
      const text = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'hello' });
      expect(text.status).toBe(400);
      const huge = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: Buffer.alloc(17 * 1024 * 1024, 32) });
      expect(huge.status).toBe(413);
      expect(await huge.json()).toMatchObject({ error: { code: 'RequestEntityTooLarge' } });
      const noVersion = await fetch(url.replace(/\?.*$/, ''), { method: 'POST', headers, body: '{}' });
      expect(noVersion.status).toBe(404);
    });

    // Azure OpenAI does not negotiate on Accept: the openai SDK sends `Accept: application/json` with every request,
    // streaming ones included, and Azure answers those with server-sent events. So no Accept gets a 406.
    it.each(['application/xml', 'text/html', 'text/event-stream'])('answers JSON (or events, for stream: true) whatever the Accept header, here %s', async (accept) => {
      const url = `${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/${chatDeployment()}/chat/completions?api-version=2024-10-21`;
      const headers = { authorization: `Bearer ${await tokenProvider()}`, 'content-type': 'application/json', accept };
      const reply = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await reply.json()).toMatchObject({ object: 'chat.completion' });
      const streamed = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }) });
      expect(streamed.status).toBe(200);
      expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(await streamed.text()).toMatch(/data: \[DONE\]/);
      const refused = await fetch(url.replace(chatDeployment(), 'no-such-deployment'), { method: 'POST', headers, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) });
      expect(refused.status).toBe(404);
      expect(await refused.json()).toMatchObject({ error: { code: 'DeploymentNotFound' } });
    });
  });

  describe('when the token is not acceptable', () => {
    it('answers a token signed by a foreign key with 401 and Azure top-level body (AuthenticationError)', async () => {
      const { privateKey, publicKey } = await generateKeyPair('RS256');
      const forged = await new SignJWT({ oid: randomBytes(8).toString('hex'), tid: env.AZURE_TENANT_ID })
        .setProtectedHeader({ alg: 'RS256', kid: (await exportJWK(publicKey)).n!.slice(0, 16) })
        .setIssuer(`https://sts.windows.net/${env.AZURE_TENANT_ID}/`)
        .setAudience('https://cognitiveservices.azure.com')
        .setExpirationTime('1h')
        .sign(privateKey);
      const forger = new AzureOpenAI({ azureADTokenProvider: async () => forged, maxRetries: 0 });
      const error = await forger.chat.completions.create({ model: chatDeployment(), messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error).toMatchObject({ status: 401 });
      const raw = await fetch(`${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/${chatDeployment()}/chat/completions?api-version=2024-10-21`, {
        method: 'POST',
        headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(await raw.json()).toEqual({
        statusCode: 401,
        message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
      });
    });

    it('answers a token for another audience with 401', async () => {
      const vaultToken = getBearerTokenProvider(credential, 'https://vault.azure.net/.default');
      const wrong = new AzureOpenAI({ azureADTokenProvider: vaultToken, maxRetries: 0 });
      const error = await wrong.embeddings.create({ model: embeddingsDeployment(), input: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
    });

    it('refuses key authentication: the local resource has no keys', async () => {
      const keyed = new AzureOpenAI({ apiKey: randomBytes(16).toString('hex'), maxRetries: 0 });
      const error = await keyed.embeddings.create({ model: embeddingsDeployment(), input: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect(error).toMatchObject({ code: '401' });
    });
  });

  describe('when a deployment spends its tokens-per-minute quota', () => {
    // One input of exactly quota + 60 tokens (a token array): admitted while the bucket is full, leaving
    // it 60 tokens in debt, which a 100-tokens-per-second refill clears in about 0.6 s.
    const bigInput = [Array.from({ length: throttledTokensPerMinute + 60 }, (_, i) => 1000 + (i % 500))];

    it('answers 429 with retry-after and Azure code "429" (RateLimitError)', async () => {
      await client.embeddings.create({ model: 'throttled-a', input: bigInput });
      const error = (await client.embeddings.create({ model: 'throttled-a', input: 'small' }).catch((e: unknown) => e)) as RateLimitError;
      expect(error).toBeInstanceOf(RateLimitError);
      expect(error).toMatchObject({ status: 429, code: '429' });
      expect(Number(error.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(error.message).toMatch(/Please retry after \d+ seconds?/);
    });

    it('is retried by the SDK after retry-after and then succeeds', async () => {
      await client.embeddings.create({ model: 'throttled-b', input: bigInput });
      const probe = (await client.embeddings.create({ model: 'throttled-b', input: 'small' }).catch((e: unknown) => e)) as RateLimitError;
      expect(probe).toBeInstanceOf(RateLimitError);
      const waitInMs = Number(probe.headers.get('retry-after-ms'));
      const patient = new AzureOpenAI({ azureADTokenProvider: tokenProvider, maxRetries: 3 });
      const attemptsBefore = embeddingAttempts();
      const started = performance.now();
      const response = await patient.embeddings.create({ model: 'throttled-b', input: 'small' });
      expect(response.data[0]!.embedding).toHaveLength(1536);
      expect(performance.now() - started).toBeGreaterThanOrEqual(waitInMs - 250);
      expect(embeddingAttempts() - attemptsBefore).toBeGreaterThanOrEqual(2);
    });
  });

  function embeddingAttempts(): number {
    return test.azure.auditLog.authorizations({ limit: 10_000 }).filter((a) => a.operation === 'POST /openai/deployments/throttled-b/embeddings').length;
  }
});

function dot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((sum, value, i) => sum + value * b[i]!, 0);
}
