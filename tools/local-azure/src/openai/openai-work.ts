import { LocalChatModel, type ChatReplyOptions, type ChatTurn } from './chat-model.js';
import { LocalEmbeddingModel } from './embedding-model.js';
import type { TokenizerEncoding } from './model-catalog.js';
import { invalidRequest, openAiErrors } from './openai-errors.js';
import { TokenCounter, type CountedMessage } from './token-counter.js';

/**
 * A chat prompt to count and, unless a model server answers the deployment (`reply` absent), the local model's
 * answer to it. The answer is not made when the prompt does not fit `promptLimit`.
 */
export interface ChatJob {
  kind: 'chat';
  encoding: TokenizerEncoding;
  messages: CountedMessage[];
  promptLimit: number;
  reply?: { json?: ChatReplyOptions['json']; stops: string[]; maxTokens: number; contextTokens: number };
}

/** A completion's text (a model server's) cut at its stop sequences and at `limit` tokens. */
export interface CompletionJob {
  kind: 'completion';
  encoding: TokenizerEncoding;
  text: string;
  stops: string[];
  limit: number;
}

/** The inputs of an embeddings request to check and count (their tokens, up to the limits) and read as texts. */
export interface EmbeddingInputsJob {
  kind: 'embeddingInputs';
  encoding: TokenizerEncoding;
  inputs: (string | number[])[];
  contextTokens: number;
  maxRequestTokens: number;
}

/** Texts to embed into `dimensions` floats each. */
export interface EmbedJob {
  kind: 'embed';
  texts: string[];
  dimensions: number;
}

export type OpenAiJob = ChatJob | CompletionJob | EmbeddingInputsJob | EmbedJob;

/** A completion: its text, tokens, and whether it was cut at its token limit. */
export interface Completion {
  text: string;
  tokens: number[];
  truncated: boolean;
}

/** The results of each kind of {@link OpenAiJob}. */
export interface OpenAiJobResults {
  chat: { promptTokens: number; completion?: Completion };
  completion: Completion;
  embeddingInputs: { promptTokens: number; texts: string[] };
  embed: Float32Array[];
}

/**
 * The CPU work of the local Azure OpenAI — counting tokens, the local chat and embedding models — as jobs that need
 * nothing but their own data, so that the same code runs on the event loop (small requests) and on a worker thread
 * (large ones, see `openai-worker.ts`) and answers the same. Request errors it throws (`OpenAiRequestError`) are the
 * requests' answers.
 */
export class OpenAiWork {
  constructor(
    private readonly tokens = new TokenCounter(),
    private readonly embeddingModel = new LocalEmbeddingModel(),
    private readonly chatModel = new LocalChatModel(embeddingModel),
  ) {}

  async run<Job extends OpenAiJob>(job: Job): Promise<OpenAiJobResults[Job['kind']]> {
    if (job.kind !== 'embed') await this.tokens.ready(job.encoding);
    return this.runLoaded(job) as OpenAiJobResults[Job['kind']];
  }

  private runLoaded(job: OpenAiJob): OpenAiJobResults[OpenAiJob['kind']] {
    switch (job.kind) {
      case 'chat':
        return this.chat(job);
      case 'completion':
        return this.completion(job.text, job.stops, job.encoding, job.limit);
      case 'embeddingInputs':
        return this.embeddingInputs(job);
      case 'embed':
        return job.texts.map((text) => this.embeddingModel.embed(text, job.dimensions));
    }
  }

  private chat(job: ChatJob): OpenAiJobResults['chat'] {
    // Counting stops once the prompt cannot fit: the work is bounded by the window, not by the body's size.
    const promptTokens = this.tokens.countChat(job.messages, job.encoding, job.promptLimit);
    if (promptTokens > job.promptLimit || !job.reply) return { promptTokens };
    const { json, stops, maxTokens, contextTokens } = job.reply;
    const turns: ChatTurn[] = job.messages.map((m) => ({ role: m.role, content: m.content }));
    const text = this.chatModel.reply(turns, { json });
    // A model stops at max_tokens, else at its largest completion or the end of its context window.
    return { promptTokens, completion: this.completion(text, stops, job.encoding, Math.min(maxTokens, contextTokens - promptTokens)) };
  }

  private completion(answer: string, stops: readonly string[], encoding: TokenizerEncoding, limit: number): Completion {
    let text = answer;
    for (const stop of stops) {
      const at = stop ? text.indexOf(stop) : -1;
      if (at >= 0) text = text.slice(0, at);
    }
    const tokens = this.tokens.encode(text, encoding, limit);
    if (tokens.length <= limit) return { text, tokens, truncated: false };
    const kept = tokens.slice(0, limit);
    return { text: this.tokens.decode(kept, encoding), tokens: kept, truncated: true };
  }

  private embeddingInputs(job: EmbeddingInputsJob): OpenAiJobResults['embeddingInputs'] {
    const { encoding, contextTokens, maxRequestTokens } = job;
    let promptTokens = 0;
    const texts = job.inputs.map((input, index) => {
      if (input === '') throw invalidRequest("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", 'input');
      // Counted up to the window only: a longer input is refused whatever its length, so its length costs nothing.
      const count = typeof input === 'string' ? this.tokens.count(input, encoding, contextTokens) : input.length;
      if (count > contextTokens) {
        throw invalidRequest(
          `This model's maximum context length is ${contextTokens} tokens, however you requested more than ${contextTokens} tokens (more than ${contextTokens} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
          `input[${index}]`,
        );
      }
      promptTokens += count;
      if (promptTokens > maxRequestTokens) throw openAiErrors.tooManyRequestTokens(promptTokens, maxRequestTokens);
      return typeof input === 'string' ? input : this.decodeTokens(input, encoding, index);
    });
    return { promptTokens, texts };
  }

  private decodeTokens(tokens: number[], encoding: TokenizerEncoding, index: number): string {
    try {
      return this.tokens.decode(tokens, encoding);
    } catch {
      throw invalidRequest(`Invalid token ids in 'input[${index}]': every id must be a token of the model's vocabulary.`, `input[${index}]`, 'invalid_value');
    }
  }
}
