import type { ThrownError } from '../runtime/worker-thread.js';

/**
 * Why the local Azure OpenAI refused a request.
 * - `Unauthorized`: no token, or a token that does not verify (401, Azure's top-level `{statusCode, message}` body).
 * - `KeyAuthDisabled`: an `api-key` header; the local resource, like Keyless's Azure ones, has no keys (401).
 * - `PermissionDenied`: the caller lacks the route's data action (401, as Azure reports it).
 * - `ResourceNotFound`: no such route, or no `api-version` (404).
 * - `ApiVersionNotSupported`: an `api-version` the service does not know (400).
 * - `DeploymentNotFound`: no deployment of that name (404).
 * - `OperationNotSupported`: chat on an embeddings deployment or the reverse (400).
 * - `InvalidRequest`: malformed JSON, wrong content type, invalid or missing parameters, more than 2,048 messages, an
 *   embeddings input over its window or inputs over 300,000 tokens together (400, OpenAI's `invalid_request_error`, or
 *   `max_tokens_per_request` for the last).
 * - `ContextLengthExceeded`: the prompt and `max_tokens` do not fit the model's context window (400).
 * - `RequestTooLarge`: a body over the size limit, refused before it is read (413).
 * - `RateLimited`: the deployment's tokens-per-minute quota is spent, or an `openai 429` fault is injected (429 with `retry-after`).
 * - `ServerError`: the deployment's model server (`backend`) failed or answered something that is not a completion, or an
 *   `openai 500` fault is injected (500).
 * - `Timeout`: the deployment's model server did not answer within its timeout (408).
 */
export type OpenAiErrorCode =
  | 'Unauthorized'
  | 'KeyAuthDisabled'
  | 'PermissionDenied'
  | 'ResourceNotFound'
  | 'ApiVersionNotSupported'
  | 'DeploymentNotFound'
  | 'OperationNotSupported'
  | 'InvalidRequest'
  | 'ContextLengthExceeded'
  | 'RequestTooLarge'
  | 'RateLimited'
  | 'ServerError'
  | 'Timeout';

/** A refusal with the status, body and headers Azure OpenAI answers it with. */
export class OpenAiRequestError extends Error {
  override readonly name = 'OpenAiRequestError';

  constructor(
    readonly code: OpenAiErrorCode,
    readonly status: number,
    /** The response body, exactly as sent. */
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(messageOf(body));
  }
}

export function isOpenAiRequestError(error: unknown): error is OpenAiRequestError {
  return error instanceof Error && error.name === 'OpenAiRequestError';
}

/** The {@link OpenAiRequestError} a worker thread threw (see `WorkerPool`), as the request's answer; undefined for other errors. */
export function reviveOpenAiRequestError(thrown: ThrownError): OpenAiRequestError | undefined {
  if (thrown.name !== 'OpenAiRequestError') return undefined;
  const { code, status, body, headers } = thrown.fields as { code: OpenAiErrorCode; status: number; body: unknown; headers: Record<string, string> };
  return new OpenAiRequestError(code, status, body, headers);
}

function messageOf(body: unknown): string {
  const record = body as { message?: unknown; error?: { message?: unknown } };
  return String(record?.error?.message ?? record?.message ?? 'request refused');
}

/** `invalid_request_error` in OpenAI's shape, which Azure OpenAI passes through for request validation. */
export function invalidRequest(message: string, param: string | null = null, code: string | null = null): OpenAiRequestError {
  return new OpenAiRequestError('InvalidRequest', 400, { error: { message, type: 'invalid_request_error', param, code } });
}

export const openAiErrors = {
  unauthorized: () =>
    new OpenAiRequestError('Unauthorized', 401, {
      statusCode: 401,
      message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
    }),
  keyAuthDisabled: () =>
    new OpenAiRequestError('KeyAuthDisabled', 401, {
      error: {
        code: '401',
        message:
          'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
      },
    }),
  permissionDenied: (principalId: string, dataAction: string, operation: string) =>
    new OpenAiRequestError('PermissionDenied', 401, {
      error: {
        code: 'PermissionDenied',
        message: `The principal \`${principalId}\` lacks the required data action \`${dataAction}\` to perform \`${operation}\` operation.`,
      },
    }),
  resourceNotFound: () => new OpenAiRequestError('ResourceNotFound', 404, { error: { code: '404', message: 'Resource not found' } }),
  apiVersionNotSupported: () => new OpenAiRequestError('ApiVersionNotSupported', 400, { error: { code: 'BadRequest', message: 'API version not supported' } }),
  deploymentNotFound: () =>
    new OpenAiRequestError('DeploymentNotFound', 404, {
      error: {
        code: 'DeploymentNotFound',
        message: 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
      },
    }),
  operationNotSupported: (operation: 'chatCompletion' | 'embeddings', model: string) =>
    new OpenAiRequestError('OperationNotSupported', 400, {
      error: {
        code: 'OperationNotSupported',
        message: `The ${operation} operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
      },
    }),
  /** The prompt and `max_tokens` do not fit the window. Counting stops at the window, so the counts are lower bounds. */
  contextLengthExceeded: (limit: number, completion: number) =>
    new OpenAiRequestError('ContextLengthExceeded', 400, {
      error: {
        message: `This model's maximum context length is ${limit} tokens, however you requested more than ${limit} tokens (more than ${limit - completion} in your prompt; ${completion} for the completion). Please reduce your prompt; or completion length.`,
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    }),
  /** The inputs of one embeddings request hold more tokens than it may (OpenAI's `max_tokens_per_request`; counting stops there). */
  tooManyRequestTokens: (requestedAtLeast: number, limit: number) =>
    new OpenAiRequestError('InvalidRequest', 400, {
      error: {
        message: `Requested at least ${requestedAtLeast} tokens, max ${limit} tokens per request`,
        type: 'max_tokens_per_request',
        param: null,
        code: 'max_tokens_per_request',
      },
    }),
  requestTooLarge: (limitBytes: number) =>
    new OpenAiRequestError('RequestTooLarge', 413, {
      error: { code: 'RequestEntityTooLarge', message: `The request body is larger than the ${limitBytes} bytes this endpoint accepts.` },
    }),
  /** The deployment's model server failed or answered nonsense (500; the openai SDK retries it). */
  serverError: (requestId: string) =>
    new OpenAiRequestError('ServerError', 500, {
      error: {
        message: `The server had an error processing your request. Sorry about that! You can retry your request. (Please include the request ID ${requestId} in any report.)`,
        type: 'server_error',
        param: null,
        code: null,
      },
    }),
  /** The deployment's model server did not answer in time (408; the openai SDK retries it). */
  timeout: () => new OpenAiRequestError('Timeout', 408, { error: { code: 'Timeout', message: 'The operation was timeout.' } }),
  rateLimited: (operation: string, apiVersion: string, retryAfterInMs: number) => {
    const seconds = Math.ceil(retryAfterInMs / 1000);
    return new OpenAiRequestError(
      'RateLimited',
      429,
      {
        error: {
          code: '429',
          message: `Requests to the ${operation} Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} second${seconds === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
        },
      },
      { 'retry-after': String(seconds), 'retry-after-ms': String(retryAfterInMs), 'x-ratelimit-remaining-tokens': '0' },
    );
  },
};
