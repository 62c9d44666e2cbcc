import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AzureOpenAI, InternalServerError, PermissionDeniedError, RateLimitError, AuthenticationError, APIError } from 'openai';
import type { TestAzure } from '../../src/testing/index.js';
import { startOpenAi } from './support.js';

/** What the fake model server received. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * A small OpenAI-compatible model server (what llama.cpp's llama-server or Ollama's /v1 answer): it records every
 * request and answers with `behaviour`.
 */
async function startModelServer(): Promise<{ url: string; received: Received[]; behaviour: { mode: 'answer' | 'fail' | 'hang' | 'garbage' }; close(): Promise<void> }> {
  const received: Received[] = [];
  const behaviour: { mode: 'answer' | 'fail' | 'hang' | 'garbage' } = { mode: 'answer' };
  const server: Server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body: JSON.parse(raw) as Record<string, unknown> });
      if (behaviour.mode === 'hang') return;
      if (behaviour.mode === 'fail') return void response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"model crashed at /srv/models/x.gguf"}');
      if (behaviour.mode === 'garbage') return void response.writeHead(200, { 'content-type': 'text/html' }).end('<html>not an API</html>');
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: 'chatcmpl-upstream',
          object: 'chat.completion',
          model: 'llama-3.2-1b-instruct',
          choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Trail Runner 3 is the one for running.' } }],
          usage: { prompt_tokens: 31, completion_tokens: 9, total_tokens: 40 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    received,
    behaviour,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const question = [
  { role: 'system' as const, content: 'You recommend products. Only mention products from the list.' },
  { role: 'user' as const, content: 'Products: Trail Runner 3 (running shoe), Alpine Parka (jacket). Which one is for running?' },
];

// A chat deployment whose `backend` names a model server: the unmodified openai SDK talks to the local Azure
// OpenAI, which checks the token, the role and the quota, then asks the model server and answers in Azure's shapes.
describe('Local Azure OpenAI with a model server behind a chat deployment', () => {
  let test: TestAzure;
  let model: Awaited<ReturnType<typeof startModelServer>>;
  let client: AzureOpenAI;

  beforeAll(async () => {
    model = await startModelServer();
    ({ test, openAi: client } = await startOpenAi({
      deployments: {
        'gpt-4o-mini': { model: 'gpt-4o-mini', tokensPerMinute: 1_000_000, backend: { url: model.url, model: 'llama-3.2-1b-instruct', timeoutInMs: 1_000 } },
        // 30 tokens a minute: one completion spends it.
        'small-quota': { model: 'gpt-4o-mini', tokensPerMinute: 30, backend: { url: model.url } },
        'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 1_000_000 },
      },
      client: { timeout: 10_000 },
    }));
  });
  afterAll(async () => {
    await test?.stop();
    await model?.close();
  });
  beforeEach(() => {
    model.received.length = 0;
    model.behaviour.mode = 'answer';
  });

  it("answers with the model server's completion in Azure's shape, counting its usage", async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question, temperature: 0.2, max_completion_tokens: 50 });
    expect(completion).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: 'Trail Runner 3 is the one for running.' } }],
      usage: { prompt_tokens: 31, completion_tokens: 9, total_tokens: 40 },
    });
    expect((completion as unknown as { prompt_filter_results: unknown[] }).prompt_filter_results).toHaveLength(1);
    expect(model.received).toHaveLength(1);
    expect(model.received[0]).toMatchObject({
      path: '/v1/chat/completions',
      body: { model: 'llama-3.2-1b-instruct', messages: question, temperature: 0.2, max_completion_tokens: 50, max_tokens: 50, stream: false },
    });
  });

  it('sends the model server no credential', async () => {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question });
    expect(model.received[0]!.headers.authorization).toBeUndefined();
    expect(model.received[0]!.headers['api-key']).toBeUndefined();
  });

  it("streams the model server's completion as Azure's chunks", async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage ??= chunk.usage ?? undefined;
    }
    expect(text).toBe('Trail Runner 3 is the one for running.');
    expect(usage).toMatchObject({ total_tokens: 40 });
    expect(model.received[0]!.body).toMatchObject({ stream: false });
    expect(model.received[0]!.body.stream_options).toBeUndefined();
  });

  it('keeps Entra authentication and RBAC in front: refused callers never reach the model server', async () => {
    const anonymous = new AzureOpenAI({ azureADTokenProvider: async () => 'not-a-token', maxRetries: 0 });
    await expect(anonymous.chat.completions.create({ model: 'gpt-4o-mini', messages: question })).rejects.toBeInstanceOf(AuthenticationError);

    const principalId = test.azure.directory.userAssignedIdentity('id-keyless')!.principalId;
    const removed = test.azure.roleAssignments.list({ principalId }).filter((a) => a.roleDefinitionName === 'Cognitive Services OpenAI User');
    expect(removed.length).toBeGreaterThan(0);
    for (const assignment of removed) test.azure.roleAssignments.delete({ id: assignment.id });
    try {
      const denied = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question }).catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(APIError);
      expect((denied as APIError).status).toBe(401);
      expect((denied as APIError).code).toBe('PermissionDenied');
      expect(denied).not.toBeInstanceOf(PermissionDeniedError);
    } finally {
      test.azure.applyAccessFile();
    }
    expect(model.received).toEqual([]);
  });

  it('keeps the quota in front: a spent deployment answers 429 without asking the model server', async () => {
    await client.chat.completions.create({ model: 'small-quota', messages: question });
    const throttled = await client.chat.completions.create({ model: 'small-quota', messages: question }).catch((error: unknown) => error);
    expect(throttled).toBeInstanceOf(RateLimitError);
    expect(Number((throttled as RateLimitError).headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(model.received).toHaveLength(1);
  });

  it('keeps deployment names: an unknown one is 404 and the model server is not asked', async () => {
    const missing = await client.chat.completions.create({ model: 'gpt-5-nowhere', messages: question }).catch((error: unknown) => error);
    expect((missing as APIError).status).toBe(404);
    expect(model.received).toEqual([]);
  });

  it.each([
    ['fail', 500],
    ['garbage', 500],
    ['hang', 408],
  ] as const)("answers a model server that does %s with Azure's %i, naming nothing of the server", async (mode, status) => {
    model.behaviour.mode = mode;
    const failed = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(APIError);
    expect((failed as APIError).status).toBe(status);
    if (status === 500) expect(failed).toBeInstanceOf(InternalServerError);
    expect(JSON.stringify((failed as APIError).error)).not.toMatch(/127\.0\.0\.1|gguf|html|llama/);
  });

  it('leaves the embeddings deployment to the local model', async () => {
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'trail running shoe' });
    expect(embedding.data[0]!.embedding).toHaveLength(1536);
    expect(model.received).toEqual([]);
  });
});
