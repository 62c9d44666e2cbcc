import { WorkerPool, WorkerPoolError } from '../runtime/worker-pool.js';
import { reviveOpenAiRequestError, type OpenAiRequestError } from './openai-errors.js';
import { OpenAiWork, type OpenAiJob } from './openai-work.js';

const products = 'Products:\n- Trail Runner 2 | running | 89.00 | grippy sole for muddy trails\n- City Sneaker | lifestyle | 59.00 | white leather';

/** Jobs of every kind, with json replies, stop sequences and cuts at the token limit among them. */
const jobs: OpenAiJob[] = [
  { kind: 'chat', encoding: 'o200k_base', messages: [{ role: 'user', content: `${products}\nWhich one is for running?` }], promptLimit: 128_000, reply: { stops: [], maxTokens: 16_384, contextTokens: 128_000 } },
  { kind: 'chat', encoding: 'o200k_base', messages: [{ role: 'user', content: `${products}\nReply in json.` }], promptLimit: 128_000, reply: { json: {}, stops: ['"'], maxTokens: 8, contextTokens: 128_000 } },
  { kind: 'chat', encoding: 'cl100k_base', messages: [{ role: 'system', content: 'Be brief.', name: 'rules' }, { role: 'user', content: 'a'.repeat(50_000) }], promptLimit: 100 },
  { kind: 'completion', encoding: 'o200k_base', text: 'one two three. four five', stops: ['.'], limit: 2 },
  { kind: 'embeddingInputs', encoding: 'cl100k_base', inputs: ['trail shoe', [83, 8892]], contextTokens: 8192, maxRequestTokens: 300_000 },
  { kind: 'embed', texts: ['trail shoe', 'winter parka'], dimensions: 256 },
];

/** Refused jobs: an empty input, token ids beyond the vocabulary, an input over its window, inputs over the request's tokens. */
const refused: OpenAiJob[] = [
  { kind: 'embeddingInputs', encoding: 'cl100k_base', inputs: ['shoe', ''], contextTokens: 8192, maxRequestTokens: 300_000 },
  { kind: 'embeddingInputs', encoding: 'cl100k_base', inputs: [[10_000_000]], contextTokens: 8192, maxRequestTokens: 300_000 },
  { kind: 'embeddingInputs', encoding: 'cl100k_base', inputs: ['word '.repeat(9000)], contextTokens: 8192, maxRequestTokens: 300_000 },
  { kind: 'embeddingInputs', encoding: 'cl100k_base', inputs: ['word '.repeat(5000), 'word '.repeat(5000)], contextTokens: 8192, maxRequestTokens: 6000 },
];

const refusal = (error: OpenAiRequestError): unknown => ({ name: error.name, code: error.code, status: error.status, body: error.body, headers: error.headers });

describe(OpenAiWork.name, () => {
  const inline = new OpenAiWork();
  let pool: WorkerPool<OpenAiJob, unknown>;

  beforeAll(() => {
    pool = new WorkerPool({ handler: new URL('./openai-worker', import.meta.url), work: 'the OpenAI work', revive: reviveOpenAiRequestError }, { threads: 1 });
  });
  afterAll(() => pool.stop());

  describe('when it runs on a worker thread', () => {
    it('answers every kind of job as on the event loop', async () => {
      for (const job of jobs) expect({ job: job.kind, result: await pool.run(job) }).toEqual({ job: job.kind, result: await inline.run(job) });
    });

    it('refuses with the same request errors as on the event loop', async () => {
      for (const job of refused) {
        const here = await inline.run(job).then(() => undefined, refusal);
        const there = await pool.run(job).then(() => undefined, refusal);
        expect(here).toBeDefined();
        expect(there).toEqual(here);
      }
    });
  });
});

describe(WorkerPool.name, () => {
  const big: OpenAiJob = { kind: 'chat', encoding: 'o200k_base', messages: [{ role: 'user', content: 'Summarize: the trail shoe grips. '.repeat(60_000) }], promptLimit: 1_000_000, reply: { stops: [], maxTokens: 64, contextTokens: 1_047_576 } };

  describe('when it is stopped during a job', () => {
    it('fails the running and the waiting jobs with stopped, and stops without waiting for them', async () => {
      const pool = new WorkerPool<OpenAiJob, unknown>({ handler: new URL('./openai-worker', import.meta.url), work: 'the OpenAI work' }, { threads: 1 });
      const running = pool.run(big).catch((error: unknown) => error);
      const waiting = pool.run(big).catch((error: unknown) => error);
      await pool.stop();
      for (const failed of await Promise.all([running, waiting])) expect(failed).toEqual(expect.objectContaining({ name: 'WorkerPoolError', reason: 'stopped' }));
      await expect(pool.run(big)).rejects.toThrow(WorkerPoolError);
    });
  });

  describe('when its thread dies', () => {
    it('fails the job with memory (over the heap limit) and serves the next job on a new thread', async () => {
      // 16 MB is less than the o200k_base vocabulary needs: the thread dies loading it.
      const pool = new WorkerPool<OpenAiJob, unknown>({ handler: new URL('./openai-worker', import.meta.url), work: 'the OpenAI work' }, { threads: 1, maxHeapInMb: 16 });
      try {
        await expect(pool.run(big)).rejects.toEqual(expect.objectContaining({ name: 'WorkerPoolError', reason: 'memory' }));
        // A new thread starts for the next job: it only needs no vocabulary.
        const vectors = (await pool.run({ kind: 'embed', texts: ['trail shoe'], dimensions: 8 })) as Float32Array[];
        expect(vectors[0]).toEqual(await new OpenAiWork().run({ kind: 'embed', texts: ['trail shoe'], dimensions: 8 }).then((v) => v[0]));
      } finally {
        await pool.stop();
      }
    });
  });
});
