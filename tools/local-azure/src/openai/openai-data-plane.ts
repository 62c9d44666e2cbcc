import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import { openAiApiVersion } from '@keyless/contracts';
import type { DataPlane, DataPlaneContext, RunningDataPlane } from '../data-plane.js';
import { faultDefaults } from '../faults/fault-catalog.js';
import { TokenRejectedError, type Caller } from '../guard/resource-guard.js';
import { answeringClientErrors, BodyTooLargeError, listenerOptions, readBody, requestId, Router, sendJson } from '../http/http-kit.js';
import { listen } from '../net/listen.js';
import { dataActions } from '../rbac/built-in-roles.js';
import { WorkerPool, WorkerPoolError } from '../runtime/worker-pool.js';
import { ChatBackend, type BackendCompletion } from './chat-backend.js';
import { modelProfile, type ModelProfile } from './model-catalog.js';
import { invalidRequest, isOpenAiRequestError, openAiErrors, OpenAiRequestError, reviveOpenAiRequestError } from './openai-errors.js';
import { chatRequestSchema, embeddingsRequestSchema, parseBody, type ChatRequest, type EmbeddingsRequest } from './openai-requests.js';
import { OpenAiWork, type Completion, type OpenAiJob, type OpenAiJobResults } from './openai-work.js';
import { TokenCounter } from './token-counter.js';
import { TokenQuota } from './token-quota.js';

/** Options of {@link createOpenAiDataPlane}. */
export interface OpenAiDataPlaneOptions {
  /** Largest request body accepted; larger ones are refused (413) before they are read. Default: 16 MiB. */
  maxBodyBytes?: number;
  /** `OPENAI_API_VERSION` written to the env files. Default: `openAiApiVersion` of @keyless/contracts (GA). */
  apiVersion?: string;
  /**
   * Requests with bodies up to this many bytes are counted and answered on the event loop; larger ones on a worker
   * thread (see `docs/local-openai-vision.md`). Default: 16 KiB.
   */
  inlineBodyBytes?: number;
}

const defaults = {
  maxBodyBytes: 16 * 1024 * 1024,
  apiVersion: openAiApiVersion,
  /** Azure OpenAI's limit on inputs per embeddings request. */
  maxEmbeddingInputs: 2048,
  /** Azure OpenAI's limit on the tokens of all inputs of one embeddings request (the v1 API reference). */
  maxEmbeddingRequestTokens: 300_000,
  /** Azure OpenAI's limit on messages per chat completions request. */
  maxChatMessages: 2048,
  /** Slow or stalled uploads are cut off after this long. */
  requestTimeoutInMs: 120_000,
  /**
   * Up to this body size a request's token counts and local models run on the event loop, larger ones on a thread.
   * Measured (CPU time, o200k_base, mixed English text): a 16 KiB chat prompt costs some 7 ms, 64 inputs of 256
   * bytes to embed some 11 ms — a stall the other listeners bear — while a round trip to the thread adds some 2.5 ms
   * to a 2 KB request, the size of the services' own chat prompts (see `docs/local-openai-vision.md`).
   */
  inlineBodyBytes: 16 * 1024,
  /** A large request's work on the thread is ended (408) after this long: the largest prompts took up to ~20 s on the loaded 2-core machine. */
  workTimeoutInMs: 120_000,
};

/** GA data-plane api-versions of Azure OpenAI; dated `-preview` versions from 2023 on are accepted too. */
export const supportedApiVersions: readonly string[] = ['2022-12-01', '2023-05-15', '2024-02-01', '2024-06-01', openAiApiVersion];

const safe = { filtered: false, severity: 'safe' } as const;
const contentFilterResults = { hate: safe, self_harm: safe, sexual: safe, violence: safe };

type Capability = 'chat' | 'embeddings';

interface Deployment {
  name: string;
  model: string;
  profile: ModelProfile;
  quota: TokenQuota;
  /** The model server that answers this chat deployment, when one is configured. */
  backend?: ChatBackend;
}

interface Operation {
  capability: Capability;
  /** `/openai/v1/...` routes: the deployment is the body's `model`, no api-version. */
  v1: boolean;
  deployment?: string;
}

/**
 * The local Azure OpenAI: one HTTPS endpoint serving chat completions (also streamed) and embeddings on
 * the configured deployments, behind Entra tokens, RBAC data actions and per-deployment token quotas, with
 * deterministic local models (see `docs/local-openai-vision.md`).
 */
export function createOpenAiDataPlane(options: OpenAiDataPlaneOptions = {}): DataPlane {
  return {
    resource: 'openAi',
    async start(context: DataPlaneContext): Promise<RunningDataPlane> {
      const deployments = new Map<string, Deployment>(
        Object.entries(context.config.resources.openAi.deployments).map(([name, d]) => [
          name,
          {
            name,
            model: d.model,
            profile: modelProfile(d.model, d.capability),
            quota: new TokenQuota(d.tokensPerMinute),
            ...(d.backend ? { backend: new ChatBackend(name, { url: d.backend.url, model: d.backend.model ?? d.model, timeoutInMs: d.backend.timeoutInMs }, context.log) } : {}),
          },
        ]),
      );
      const settings = { ...defaults, maxBodyBytes: options.maxBodyBytes ?? defaults.maxBodyBytes, inlineBodyBytes: options.inlineBodyBytes ?? defaults.inlineBodyBytes };
      const pool = new WorkerPool<OpenAiJob, unknown>(
        { handler: new URL('./openai-worker', import.meta.url), work: 'the OpenAI work', revive: reviveOpenAiRequestError },
        // The pool's 512 MB heap holds the largest prompts tried: 8.3 M letters, 280,000 distinct words to gpt-4.1.
        { timeoutInMs: defaults.workTimeoutInMs },
      );
      const service = new OpenAiService(context, deployments, new TokenCounter(), settings, pool);
      const listener = await listen(() => {
        const options = listenerOptions(context.config.network.limits, { requestTimeoutInMs: defaults.requestTimeoutInMs });
        return answeringClientErrors(createServer({ cert: context.tls.certPem, key: context.tls.keyPem, ...options }, service.router().listener()), { listener: 'openAi', auditLog: context.auditLog, log: context.log });
      }, context.bind);
      const endpoint = `https://${context.publicHost}:${listener.port}`;
      const first = (capability: Capability): string | undefined => [...deployments.values()].find((d) => d.profile.capability === capability)?.name;
      const chat = first('chat');
      const embeddings = first('embeddings');
      return {
        port: listener.port,
        env: {
          AZURE_OPENAI_ENDPOINT: endpoint,
          AZURE_OPENAI_RESOURCE_ID: context.directory.resourceId('openAi'),
          OPENAI_API_VERSION: options.apiVersion ?? defaults.apiVersion,
          ...(chat ? { AZURE_OPENAI_CHAT_DEPLOYMENT: chat } : {}),
          ...(embeddings ? { AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: embeddings } : {}),
        },
        endpoint,
        summary: `Azure OpenAI  ${endpoint}  (deployments: ${[...deployments.values()].map((d) => `${d.name} → ${d.model}${d.backend ? ' (model server)' : ''}`).join(', ')})`,
        adminRoutes(api) {
          api.add({
            method: 'GET',
            pattern: /^\/openai\/deployments$/,
            access: () => [{ action: 'Microsoft.CognitiveServices/accounts/deployments/read', scope: context.directory.resourceId('openAi') }],
            handle: () =>
              [...deployments.values()].map((d) => ({
                name: d.name,
                model: d.model,
                capability: d.profile.capability,
                tokensPerMinute: d.quota.tokensPerMinute,
                remainingTokens: d.quota.remaining(),
              })),
          });
        },
        // Together: a stop never waits for a large request's work (its thread is terminated, its connection closed).
        stop: async () => {
          await Promise.all([listener.close(), pool.stop()]);
        },
      };
    },
  };
}

/** The local Azure OpenAI with its defaults. */
export const openAiDataPlane: DataPlane = createOpenAiDataPlane();

/** What a request's work is for: its size decides where it runs, the rest names it in a refusal. */
interface WorkContext {
  id: string;
  bodyBytes: number;
  operation: 'ChatCompletions_Create' | 'Embeddings_Create';
  apiVersion: string;
}

class OpenAiService {
  private readonly inline: OpenAiWork;
  private readonly scope: string;

  constructor(
    private readonly context: DataPlaneContext,
    private readonly deployments: ReadonlyMap<string, Deployment>,
    private readonly tokens: TokenCounter,
    private readonly settings: typeof defaults,
    private readonly pool: WorkerPool<OpenAiJob, unknown>,
  ) {
    this.scope = context.directory.resourceId('openAi');
    this.inline = new OpenAiWork(tokens);
  }

  /**
   * Runs `job` on the event loop for a small request, on the pool's thread for a large one: the same code with the
   * same results and refusals. The thread's own failures become Azure's answers without their detail: 429 when
   * requests wait for it already, 408 past its time budget, 500 otherwise (a crash, its heap limit, a stop).
   */
  private async work<Job extends OpenAiJob>(job: Job, request: WorkContext): Promise<OpenAiJobResults[Job['kind']]> {
    if (request.bodyBytes <= this.settings.inlineBodyBytes) return this.inline.run(job);
    try {
      return (await this.pool.run(job)) as OpenAiJobResults[Job['kind']];
    } catch (error) {
      if (!(error instanceof WorkerPoolError)) throw error;
      this.context.log(`openAi: a request was not answered (${error.reason}): ${error.message}`);
      if (error.reason === 'busy') throw openAiErrors.rateLimited(request.operation, request.apiVersion, faultDefaults.retryAfterInSeconds * 1000);
      if (error.reason === 'timeout') throw openAiErrors.timeout();
      throw openAiErrors.serverError(request.id);
    }
  }

  router(): Router {
    const notFound = (request: IncomingMessage, response: ServerResponse): void => this.fail(response, requestId(request), openAiErrors.resourceNotFound());
    return new Router((line) => this.context.log(`openAi: ${line}`), notFound)
      .on('POST', /^\/openai\/deployments\/(?<deployment>[^/]+)\/chat\/completions$/, (req, res, { params, url }) =>
        this.serve(req, res, url, { capability: 'chat', v1: false, deployment: decodePathSegment(params.deployment!) }),
      )
      .on('POST', /^\/openai\/deployments\/(?<deployment>[^/]+)\/embeddings$/, (req, res, { params, url }) =>
        this.serve(req, res, url, { capability: 'embeddings', v1: false, deployment: decodePathSegment(params.deployment!) }),
      )
      .on('POST', /^\/openai\/v1\/chat\/completions$/, (req, res, { url }) => this.serve(req, res, url, { capability: 'chat', v1: true }))
      .on('POST', /^\/openai\/v1\/embeddings$/, (req, res, { url }) => this.serve(req, res, url, { capability: 'embeddings', v1: true }));
  }

  private async serve(request: IncomingMessage, response: ServerResponse, url: URL, operation: Operation): Promise<void> {
    const id = requestId(request);
    try {
      const caller = await this.authenticate(request);
      this.authorize(caller, operation, url);
      const apiVersion = operation.v1 ? 'v1' : this.apiVersion(url);
      this.throwInjectedFault(operation, apiVersion, id);
      const raw = await readBody(request, this.settings.maxBodyBytes).catch((error: unknown) => {
        if (error instanceof BodyTooLargeError) throw openAiErrors.requestTooLarge(this.settings.maxBodyBytes);
        throw error;
      });
      const contentType = request.headers['content-type'];
      if (operation.capability === 'chat') {
        const body = parseBody(chatRequestSchema, raw, contentType);
        const deployment = this.deployment(operation, body.model, 'chat');
        await this.tokens.ready(deployment.profile.encoding);
        await this.chat(response, { id, bodyBytes: raw.length, operation: 'ChatCompletions_Create', apiVersion }, deployment, body);
      } else {
        const body = parseBody(embeddingsRequestSchema, raw, contentType);
        const deployment = this.deployment(operation, body.model, 'embeddings');
        await this.embeddings(response, { id, bodyBytes: raw.length, operation: 'Embeddings_Create', apiVersion }, deployment, body);
      }
    } catch (error) {
      if (!isOpenAiRequestError(error)) throw error;
      this.fail(response, id, error);
    }
  }

  private async authenticate(request: IncomingMessage): Promise<Caller> {
    const authorization = request.headers.authorization;
    if (!authorization && request.headers['api-key'] !== undefined) throw openAiErrors.keyAuthDisabled();
    try {
      return await this.context.guard.authenticate(authorization, ['https://cognitiveservices.azure.com']);
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      this.context.log(`openAi: 401 for ${request.method} ${request.url}: ${error.message} (${error.reason})`);
      throw openAiErrors.unauthorized();
    }
  }

  private authorize(caller: Caller, operation: Operation, url: URL): void {
    const action = operation.capability === 'chat' ? dataActions.openAiChatCompletions : dataActions.openAiEmbeddings;
    const decision = this.context.guard.authorize(caller, action, this.scope, { resource: 'openAi', operation: `POST ${url.pathname}` });
    if (decision.allowed) return;
    const template = operation.v1
      ? `POST /openai/v1/${operation.capability === 'chat' ? 'chat/completions' : 'embeddings'}`
      : `POST /openai/deployments/{deployment-id}/${operation.capability === 'chat' ? 'chat/completions' : 'embeddings'}`;
    const role = decision.roleNeeded?.name ?? 'Cognitive Services OpenAI User';
    this.context.log(
      `openAi: PermissionDenied: principal ${caller.principalId} lacks ${action} on ${this.scope}. ` +
        `Fix: az role assignment create --assignee-object-id ${caller.principalId} --assignee-principal-type ServicePrincipal --role "${role}" --scope ${this.scope}`,
    );
    throw openAiErrors.permissionDenied(caller.principalId, action, template);
  }

  /** An `openai 429|500` fault answers every authorized request (after authentication and RBAC, as Azure's throttling does). */
  private throwInjectedFault(operation: Operation, apiVersion: string, requestId: string): void {
    const { mode } = this.context.faults.get('openai');
    if (mode === '429') {
      throw openAiErrors.rateLimited(operation.capability === 'chat' ? 'ChatCompletions_Create' : 'Embeddings_Create', apiVersion, faultDefaults.retryAfterInSeconds * 1000);
    }
    if (mode === '500') throw openAiErrors.serverError(requestId);
  }

  private apiVersion(url: URL): string {
    const version = url.searchParams.get('api-version');
    if (!version) throw openAiErrors.resourceNotFound();
    if (!supportedApiVersions.includes(version) && !/^20(2[3-9]|[3-9]\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])-preview$/.test(version)) {
      throw openAiErrors.apiVersionNotSupported();
    }
    return version;
  }

  private deployment(operation: Operation, model: string | undefined, capability: Capability): Deployment {
    const name = operation.v1 ? model : operation.deployment;
    if (!name) throw invalidRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    const deployment = this.deployments.get(name);
    if (!deployment) throw openAiErrors.deploymentNotFound();
    if (deployment.profile.capability !== capability) {
      throw openAiErrors.operationNotSupported(capability === 'chat' ? 'chatCompletion' : 'embeddings', deployment.model);
    }
    return deployment;
  }

  private async chat(response: ServerResponse, request: WorkContext, deployment: Deployment, body: ChatRequest): Promise<void> {
    const { id, apiVersion } = request;
    const { encoding, contextTokens, maxCompletionTokens } = deployment.profile;
    if (body.messages.length > this.settings.maxChatMessages) {
      throw invalidRequest(`'$.messages' is too long. Maximum length is ${this.settings.maxChatMessages}, but got ${body.messages.length} items.`, 'messages');
    }
    const messages = body.messages.map((m) => ({ role: m.role, content: flatten(m.content), ...(m.name ? { name: m.name } : {}) }));
    const format = body.response_format;
    if (format?.type === 'json_object' && !messages.some((m) => /json/i.test(m.content))) {
      throw invalidRequest("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'messages');
    }
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const maxParam = body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens';
    if (maxTokens !== undefined && maxTokens > maxCompletionTokens) {
      throw invalidRequest(
        `${maxParam} is too large: ${maxTokens}. This model supports at most ${maxCompletionTokens} completion tokens, whereas you provided ${maxTokens}.`,
        maxParam,
        'invalid_value',
      );
    }
    const promptLimit = contextTokens - (maxTokens ?? 0);
    const json = format?.type === 'json_object' ? {} : format?.type === 'json_schema' ? { schema: format.json_schema.schema } : undefined;
    const stops = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? []);
    // A model stops at max_tokens, else at its largest completion or the end of its context window.
    const completionMax = maxTokens ?? maxCompletionTokens;
    const counted = await this.work(
      { kind: 'chat', encoding, messages, promptLimit, ...(deployment.backend ? {} : { reply: { json, stops, maxTokens: completionMax, contextTokens } }) },
      request,
    );
    const { promptTokens } = counted;
    if (promptTokens > promptLimit) throw openAiErrors.contextLengthExceeded(contextTokens, maxTokens ?? 0);

    let served: BackendCompletion | undefined;
    let reply: Completion;
    if (deployment.backend) {
      // Admitted (or refused with 429) before the model server is asked; the completion is charged once it answers.
      this.charge(deployment, promptTokens, 'ChatCompletions_Create', apiVersion);
      served = await deployment.backend.complete(body, id);
      const limit = Math.min(completionMax, contextTokens - promptTokens);
      reply = await this.work({ kind: 'completion', encoding, text: served.text, stops, limit }, { ...request, bodyBytes: served.text.length });
    } else {
      reply = counted.completion!;
    }
    const { text, tokens: completion } = reply;
    const finishReason: 'stop' | 'length' = reply.truncated ? 'length' : (served?.finishReason ?? 'stop');
    const n = body.n ?? 1;
    // A model server's own counts are its tokenizer's; the text it answered is sent as it is (the stop and
    // max_tokens cuts above change nothing it has not done itself).
    const prompt = served?.usage?.promptTokens ?? promptTokens;
    const completionTokens = (served?.usage?.completionTokens ?? completion.length) * n;
    const usage = { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens };
    const remaining = served ? deployment.quota.debit(Math.max(0, usage.total_tokens - promptTokens)) : this.charge(deployment, usage.total_tokens, 'ChatCompletions_Create', apiVersion);

    const headers = this.headers(id, remaining);
    const common = { id: `chatcmpl-${randomUUID().replace(/-/g, '').slice(0, 29)}`, created: Math.floor(Date.now() / 1000), model: deployment.model, system_fingerprint: 'fp_local' };
    const promptFilterResults = [{ prompt_index: 0, content_filter_results: { ...contentFilterResults, jailbreak: { filtered: false, detected: false } } }];
    const choiceFilter = { ...contentFilterResults, protected_material_code: { filtered: false, detected: false }, protected_material_text: { filtered: false, detected: false } };
    if (!body.stream) {
      sendJson(
        response,
        200,
        {
          choices: Array.from({ length: n }, (_, index) => ({
            content_filter_results: choiceFilter,
            finish_reason: finishReason,
            index,
            logprobs: null,
            message: { annotations: [], content: text, refusal: null, role: 'assistant' },
          })),
          ...common,
          object: 'chat.completion',
          prompt_filter_results: promptFilterResults,
          usage: {
            ...usage,
            completion_tokens_details: { accepted_prediction_tokens: 0, audio_tokens: 0, reasoning_tokens: 0, rejected_prediction_tokens: 0 },
            prompt_tokens_details: { audio_tokens: 0, cached_tokens: 0 },
          },
        },
        headers,
      );
      return;
    }
    response.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const send = (chunk: unknown): boolean => !response.destroyed && response.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const chunk = (choices: unknown[]): Record<string, unknown> => ({ choices, ...common, object: 'chat.completion.chunk' });
    // Azure sends the prompt's content-filter verdict first, in a chunk with no choices and empty ids.
    send({ choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: promptFilterResults });
    const pieces = completion.map((token) => this.tokens.decode([token], encoding));
    for (let index = 0; index < n; index++) {
      send(chunk([{ content_filter_results: {}, delta: { content: '', refusal: null, role: 'assistant' }, finish_reason: null, index, logprobs: null }]));
      for (const piece of pieces) {
        if (!send(chunk([{ content_filter_results: contentFilterResults, delta: { content: piece }, finish_reason: null, index, logprobs: null }]))) {
          await waitForDrain(response);
        }
        if (response.destroyed) return;
      }
      send(chunk([{ content_filter_results: {}, delta: {}, finish_reason: finishReason, index, logprobs: null }]));
    }
    if (body.stream_options?.include_usage) send({ ...chunk([]), usage });
    response.end('data: [DONE]\n\n');
  }

  private async embeddings(response: ServerResponse, request: WorkContext, deployment: Deployment, body: EmbeddingsRequest): Promise<void> {
    const { id, apiVersion } = request;
    const { encoding, contextTokens, dimensions: native = 1536, acceptsDimensions } = deployment.profile;
    const raw = body.input;
    const inputs: (string | number[])[] = typeof raw === 'string' ? [raw] : typeof raw[0] === 'number' ? [raw as number[]] : (raw as (string | number[])[]);
    if (inputs.length > this.settings.maxEmbeddingInputs) {
      throw invalidRequest(
        `Too many inputs. The max number of inputs is ${this.settings.maxEmbeddingInputs}.  We hope to increase the number of inputs per request soon. Please contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 for further questions.`,
        'input',
      );
    }
    let dimensions = native;
    if (body.dimensions !== undefined && body.dimensions !== null) {
      if (!acceptsDimensions) throw invalidRequest('This model does not support specifying dimensions.', 'dimensions');
      if (body.dimensions < 1 || body.dimensions > native) {
        throw invalidRequest(`The requested dimensions ${body.dimensions} is not supported. It must be between 1 and ${native}.`, 'dimensions', 'invalid_value');
      }
      dimensions = body.dimensions;
    }
    const { promptTokens, texts } = await this.work(
      { kind: 'embeddingInputs', encoding, inputs, contextTokens, maxRequestTokens: this.settings.maxEmbeddingRequestTokens },
      request,
    );
    const remaining = this.charge(deployment, promptTokens, 'Embeddings_Create', apiVersion);
    const vectors = await this.work({ kind: 'embed', texts, dimensions }, request);
    const base64 = body.encoding_format === 'base64';
    sendJson(
      response,
      200,
      {
        object: 'list',
        data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: base64 ? toBase64(vector) : Array.from(vector) })),
        model: deployment.model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      },
      this.headers(id, remaining),
    );
  }

  private charge(deployment: Deployment, tokens: number, operation: string, apiVersion: string): number {
    const decision = deployment.quota.charge(tokens);
    if (decision.admitted) return decision.remainingTokens;
    this.context.log(`openAi: 429 on deployment ${deployment.name} (${deployment.quota.tokensPerMinute} tokens per minute); retry after ${decision.retryAfterInMs} ms`);
    throw openAiErrors.rateLimited(operation, apiVersion === 'v1' ? 'v1' : apiVersion, decision.retryAfterInMs);
  }

  private headers(id: string, remainingTokens: number): Record<string, string> {
    return { 'apim-request-id': id, 'x-request-id': id, 'x-ms-region': 'local', 'x-ratelimit-remaining-tokens': String(remainingTokens) };
  }

  private fail(response: ServerResponse, id: string, error: OpenAiRequestError): void {
    if (response.headersSent) {
      response.destroy(error);
      return;
    }
    sendJson(response, error.status, error.body, { 'apim-request-id': id, 'x-request-id': id, ...error.headers });
  }
}

/** Text of a message: string content, or its text parts; other parts (images, audio) as placeholders. */
function flatten(content: ChatRequest['messages'][number]['content']): string {
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content.map((part) => (part.type === 'text' && typeof part.text === 'string' ? part.text : `[${part.type}]`)).join('\n');
}

/** Little-endian float32 bytes in base64, the encoding the openai SDK decodes. */
function toBase64(vector: Float32Array): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return bytes.toString('base64');
}

function waitForDrain(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.once('drain', done);
    response.once('close', done);
  });
}

/** A URL path segment, percent-decoded; malformed escapes stay as written (and so name no deployment). */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
