import { z } from 'zod';
import type { ConsoleLog } from '../data-plane.js';
import { openAiErrors } from './openai-errors.js';
import type { ChatRequest } from './openai-requests.js';

/** Where a chat deployment's completions are answered (`resources.openAi.deployments.<name>.backend`). */
export interface ChatBackendSettings {
  /** Base URL of an OpenAI-compatible API (`http://127.0.0.1:11434/v1`). */
  url: string;
  /** The model name the server knows. */
  model: string;
  timeoutInMs: number;
}

/** What a model server answered, reduced to what the local Azure OpenAI puts in its own response. */
export interface BackendCompletion {
  text: string;
  finishReason: 'stop' | 'length';
  /** The server's own token counts, when it reports them. */
  usage?: { promptTokens: number; completionTokens: number };
}

const completionSchema = z.looseObject({
  choices: z
    .array(z.looseObject({ message: z.looseObject({ content: z.string().nullable().optional() }), finish_reason: z.string().nullable().optional() }))
    .min(1),
  usage: z.looseObject({ prompt_tokens: z.number().int().min(0), completion_tokens: z.number().int().min(0) }).nullable().optional(),
});

/** Request parameters that are not forwarded: the stream is rebuilt locally, `n` repeats one answer, tools are not supported. */
const notForwarded = ['model', 'stream', 'stream_options', 'n', 'tools', 'tool_choice', 'functions', 'function_call', 'parallel_tool_calls', 'user'];

/**
 * Sends a chat completion to an OpenAI-compatible model server and reads its answer. Everything the caller of
 * the local Azure OpenAI sees stays Azure's: this runs after authentication, RBAC, validation and the quota
 * check, and its failures become Azure-shaped errors (500 `server_error`, 408 on timeout) whose text names
 * nothing of the server; what went wrong is written to the local Azure's console.
 *
 * Rules:
 * - The request body is forwarded as the caller sent it (messages with their parts, temperature, top_p,
 *   max_tokens, stop, seed, response_format, …) with `model` set to the server's model, `stream: false`, and
 *   without `n` and tool parameters; `max_completion_tokens` is sent as `max_tokens` too (older servers know only that).
 * - No credential is sent: no Authorization header, no key.
 * - A connection failure, a non-2xx answer, or a body that is not a chat completion is a server error; no answer
 *   within `timeoutInMs` is a timeout.
 */
export class ChatBackend {
  constructor(
    private readonly deployment: string,
    private readonly settings: ChatBackendSettings,
    private readonly log: ConsoleLog,
  ) {}

  async complete(body: ChatRequest, requestId: string): Promise<BackendCompletion> {
    const forwarded: Record<string, unknown> = Object.fromEntries(Object.entries(body).filter(([key]) => !notForwarded.includes(key)));
    forwarded.model = this.settings.model;
    forwarded.stream = false;
    if (body.max_completion_tokens) forwarded.max_tokens ??= body.max_completion_tokens;
    const url = `${this.settings.url.replace(/\/+$/, '')}/chat/completions`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(forwarded),
        signal: AbortSignal.timeout(this.settings.timeoutInMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      this.log(`openAi: deployment ${this.deployment}: model server ${url} ${timedOut ? `did not answer within ${this.settings.timeoutInMs} ms` : `is unreachable (${(error as Error).cause ?? (error as Error).message})`}`);
      throw timedOut ? openAiErrors.timeout() : openAiErrors.serverError(requestId);
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      this.log(`openAi: deployment ${this.deployment}: model server ${url} answered ${response.status}: ${text.slice(0, 300)}`);
      throw openAiErrors.serverError(requestId);
    }
    let parsed: z.infer<typeof completionSchema>;
    try {
      parsed = completionSchema.parse(JSON.parse(text));
    } catch {
      this.log(`openAi: deployment ${this.deployment}: model server ${url} answered something that is not a chat completion: ${text.slice(0, 300)}`);
      throw openAiErrors.serverError(requestId);
    }
    const [choice] = parsed.choices;
    return {
      text: choice!.message.content ?? '',
      finishReason: choice!.finish_reason === 'length' ? 'length' : 'stop',
      ...(parsed.usage ? { usage: { promptTokens: parsed.usage.prompt_tokens, completionTokens: parsed.usage.completion_tokens } } : {}),
    };
  }
}
