import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { AzureOpenAI } from 'openai';
import type { TestAzure } from '../../src/testing/index.js';
import { startOpenAi } from './support.js';

// The local Azure serves every listener from one thread. Its token counter once merged a run of whitespace in
// time growing with the square of its length: one chat request of 200,000 spaces between two letters (1,566
// tokens, well inside the 128k context) held Entra, Service Bus, OpenAI and the portal for some 48 s.
describe('Azure OpenAI, given a prompt with a long run of whitespace', () => {
  let test: TestAzure;
  let openAi: AzureOpenAI;

  beforeAll(async () => {
    ({ test, openAi } = await startOpenAi());
    // Token and vocabulary loads are not what is timed.
    await openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Reply with exactly: ok' }] });
    await openAi.embeddings.create({ model: 'text-embedding-3-small', input: 'trail shoe' });
  });
  afterAll(() => test.stop());

  const timed = async <T>(call: () => Promise<T>): Promise<{ result: T; ms: number }> => {
    const started = performance.now();
    const result = await call();
    return { result, ms: performance.now() - started };
  };

  it('answers a chat request with 200,000 spaces quickly, counting them as Azure does, and serves another caller meanwhile', async () => {
    const [long, short] = await Promise.all([
      timed(() => openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `a${' '.repeat(200_000)}b` }] })),
      timed(() => openAi.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Reply with exactly: ok' }] })),
    ]);
    expect(long.ms).toBeLessThan(12_000);
    expect(short.ms).toBeLessThan(12_000);
    expect(short.result.choices[0]!.message.content).toBe('ok');
    // 1,566 tokens for the text (gpt-4o's o200k_base), plus the chat framing.
    expect(long.result.usage!.prompt_tokens).toBeGreaterThan(1_566);
    expect(long.result.usage!.prompt_tokens).toBeLessThan(1_600);
  });

  it('answers a chat request with 9 MiB of spaces after a character beyond Latin-1, counting every one', async () => {
    // A string holding a character beyond Latin-1 parses from the body stored two bytes a character, where V8's
    // regular expressions keep a backtracking entry per character of a match on a stack capped at 64 MiB: the token
    // counter's pre-tokenizer expression over this one run of 9,437,184 spaces threw "Maximum call stack size
    // exceeded" and the request failed with a 500. The run ends the text, so it is one piece of 73,728 tokens of
    // 128 spaces (o200k_base), inside gpt-4o-mini's window.
    // Sending 9 MiB on a loaded machine can outlast the listener's 5 s keep-alive, and a request on a connection the
    // server is closing fails as any client's would (ECONNRESET), so the SDK's retries are on here. They do not hide
    // the bug: the 500 came again on every try.
    const spaces = 9 * 1024 * 1024;
    const completion = await openAi
      .withOptions({ maxRetries: 2 })
      .chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: `—${' '.repeat(spaces)}` }] });
    // The chat framing: 3 tokens to prime the reply, 3 per message, then its role and content.
    expect(completion.usage!.prompt_tokens).toBe(3 + 3 + encode('user').length + encode('—').length + spaces / 128);
    expect(completion.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
  });

  // Each of these made one of the chat model's regular expressions retry a run from each of its positions: a greeting
  // with one short word (/^hi\b[\s!.,]*\w{0,12}[\s!.]*$/), a listed line (/^- \s+(.+?)\s*$/) and a fenced JSON block
  // (/```json\s*\n([\s\S]*?)```/) each took tens of seconds of the local Azure's one thread at these lengths, all
  // well inside gpt-4o-mini's window (a character beyond Latin-1 makes the prompt a two-byte string, as a caller's is).
  it.each([
    ['a greeting followed by 200,000 spaces', `hi${' '.repeat(200_000)}?—`],
    ['a listed line with 200,000 spaces in its text', `Products:\n- trail shoe${' '.repeat(200_000)}—`],
    ['an unclosed fenced JSON block opening with 300,000 empty lines', `\`\`\`json${'\n'.repeat(300_000)}—`],
  ])('answers a chat request with %s quickly', async (_name, content) => {
    const { result, ms } = await timed(() => openAi.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content }] }));
    expect(ms).toBeLessThan(12_000);
    expect(result.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
  });

  it('embeds 200,000 spaces quickly', async () => {
    const { result, ms } = await timed(() => openAi.embeddings.create({ model: 'text-embedding-3-small', input: `a${' '.repeat(200_000)}b` }));
    expect(ms).toBeLessThan(12_000);
    expect(result.usage.prompt_tokens).toBeGreaterThan(1_000);
  });
});
