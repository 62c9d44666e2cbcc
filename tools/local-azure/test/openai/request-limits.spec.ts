import { BadRequestError, type AzureOpenAI } from 'openai';
import type { TestAzure } from '../../src/testing/index.js';
import { startOpenAi } from './support.js';

const mebibyte = 1024 * 1024;

// The local Azure serves every listener from one thread, so the work a request may cost has to be bounded by
// Azure's documented limits, not by the 16 MiB a body may hold: token counting stops at the context window
// (8,192 tokens per embeddings input, the chat model's window), an embeddings request at 300,000 tokens, a
// chat request at 2,048 messages, and a reply at the model's largest completion.
describe('Azure OpenAI, given requests at the documented limits', () => {
  let test: TestAzure;
  let openAi: AzureOpenAI;

  beforeAll(async () => {
    ({ test, openAi } = await startOpenAi({
      deployments: {
        'gpt-4o-mini': { model: 'gpt-4o-mini', tokensPerMinute: 100_000_000 },
        'text-embedding-3-small': { model: 'text-embedding-3-small', tokensPerMinute: 100_000_000 },
      },
      // The SDK's default retries: building and sending a 16 MiB body on a loaded machine can outlast the listener's
      // 5 s keep-alive, and a request on a connection the server is closing fails as any client's would, retried.
      // No refusal here is retried (400s are final), so a retry never turns a failure into a pass.
      client: { maxRetries: 2, timeout: 120_000 },
    }));
    // Token and vocabulary loads happen once, here.
    await openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
    await openAi.embeddings.create({ model: 'text-embedding-3-small', input: 'trail shoe' });
  });
  afterAll(() => test.stop());

  const refusal = (call: () => Promise<unknown>): Promise<BadRequestError> =>
    call().then(
      () => {
        throw new Error('expected a 400');
      },
      (error: unknown) => {
        if (!(error instanceof BadRequestError)) throw error;
        return error;
      },
    );

  describe('with a prompt that fills a 16 MiB body', () => {
    // Before counting stopped at the window, 16 MiB of one letter held the local Azure's thread for some 45 s on a
    // loaded 2-core machine (the test's timeout); now it is refused after reading the body. token-counter.spec times it.
    it('refuses it with context_length_exceeded', async () => {
      const error = await refusal(() =>
        openAi.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'a'.repeat(16 * mebibyte - 4096) }] }),
      );
      expect(error.code).toBe('context_length_exceeded');
      expect(error.message).toContain("This model's maximum context length is 128000 tokens, however you requested more than 128000 tokens");
    });
  });

  describe('with embeddings inputs at the per-input limit', () => {
    it('counts sixteen inputs of 1 MiB of spaces exactly', async () => {
      // 1,047,552 spaces are 8,184 tokens of 128 spaces each (cl100k_base), just inside 8,192; sixteen fill the body.
      // Before runs reused their windows' merge this took some 30 s of the one thread on a loaded 2-core machine.
      const input = Array.from({ length: 16 }, () => ' '.repeat(mebibyte - 1024));
      const result = await openAi.embeddings.create({ model: 'text-embedding-3-small', input });
      expect(result.usage.prompt_tokens).toBe(16 * 8_184);
      expect(result.data).toHaveLength(16);
    });

    it('refuses an input over 8,192 tokens, naming it', async () => {
      const error = await refusal(() => openAi.embeddings.create({ model: 'text-embedding-3-small', input: ['trail shoe', 'word '.repeat(9_000)] }));
      expect(error.param).toBe('input[1]');
      expect(error.message).toContain("This model's maximum context length is 8192 tokens, however you requested more than 8192 tokens");
    });

    it('refuses inputs holding more than 300,000 tokens together with max_tokens_per_request', async () => {
      // 38 inputs of 8,000 tokens: each fits, together they are 304,000.
      const error = await refusal(() => openAi.embeddings.create({ model: 'text-embedding-3-small', input: Array.from({ length: 38 }, () => 'word '.repeat(8_000)) }));
      expect(error.code).toBe('max_tokens_per_request');
      expect(error.type).toBe('max_tokens_per_request');
      expect(error.message).toMatch(/^400 Requested at least \d+ tokens, max 300000 tokens per request$/);
    });
  });

  describe('with chat requests at their limits', () => {
    it('refuses more than 2,048 messages', async () => {
      const messages = Array.from({ length: 2_049 }, () => ({ role: 'user' as const, content: 'hi' }));
      const error = await refusal(() => openAi.chat.completions.create({ model: 'gpt-4o-mini', messages }));
      expect(error.param).toBe('messages');
      expect(error.message).toContain("'$.messages' is too long. Maximum length is 2048, but got 2049 items.");
    });

    it('stops a reply at the model’s largest completion when max_tokens is not given', async () => {
      // The summary of one sentence of 20,000 words is that sentence: some 20,000 tokens of reply.
      const completion = await openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Summarize this: ${'word '.repeat(20_000)}` }] });
      expect(completion.choices[0]!.finish_reason).toBe('length');
      expect(completion.usage!.completion_tokens).toBe(16_384);
    });
  });
});
