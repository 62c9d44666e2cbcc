import { z } from 'zod';
import { invalidRequest, type OpenAiRequestError } from './openai-errors.js';

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish();

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const otherPart = z.looseObject({ type: z.string() });

const messageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(z.union([textPart, otherPart])).min(1), z.null()]).optional(),
  name: z.string().max(64).optional(),
});

const jsonSchemaFormat = z.looseObject({
  name: z.string().regex(/^[\w-]{1,64}$/),
  schema: z.record(z.string(), z.unknown()).optional(),
  strict: nullable(z.boolean()),
});

/**
 * The chat-completions request parameters the local model uses or checks. Parameters it does not use
 * (tools, penalties, logit_bias, seed, …) are accepted and ignored, as a model that never calls tools would.
 */
export const chatRequestSchema = z.looseObject({
  model: z.string().optional(),
  messages: z.array(messageSchema).min(1),
  max_tokens: nullable(z.int().min(1)),
  max_completion_tokens: nullable(z.int().min(1)),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  n: nullable(z.int().min(1).max(128)),
  stream: nullable(z.boolean()),
  stream_options: nullable(z.looseObject({ include_usage: z.boolean().optional() })),
  stop: nullable(z.union([z.string(), z.array(z.string()).max(4)])),
  response_format: nullable(
    z.discriminatedUnion('type', [
      z.looseObject({ type: z.literal('text') }),
      z.looseObject({ type: z.literal('json_object') }),
      z.looseObject({ type: z.literal('json_schema'), json_schema: jsonSchemaFormat }),
    ]),
  ),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Embeddings request: `input` is a string, strings, a token array, or token arrays. */
export const embeddingsRequestSchema = z.looseObject({
  model: z.string().optional(),
  input: z.union([z.string(), z.array(z.string()).min(1), z.array(z.int().min(0)).min(1), z.array(z.array(z.int().min(0)).min(1)).min(1)]),
  encoding_format: nullable(z.enum(['float', 'base64'])),
  dimensions: nullable(z.int()),
  user: nullable(z.string()),
});
export type EmbeddingsRequest = z.infer<typeof embeddingsRequestSchema>;

/**
 * Parses a JSON request body with `schema`.
 *
 * @throws {OpenAiRequestError} `InvalidRequest` naming the first offending parameter, in OpenAI's words.
 */
export function parseBody<T extends z.ZodType>(schema: T, raw: Buffer, contentType: string | undefined): z.infer<T> {
  if (!/^application\/(.+\+)?json\b/i.test(contentType ?? '')) {
    throw invalidRequest(`Unsupported content type: '${contentType ?? 'none'}'. This API method only accepts 'application/json' requests.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw invalidRequest('The request body must be a JSON object.');
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  throw describe(result.error.issues[0]!, json as Record<string, unknown>);
}

function describe(issue: z.core.$ZodIssue, body: Record<string, unknown>): OpenAiRequestError {
  const param = issue.path.reduce<string>((path, key) => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${String(key)}` : String(key)), '');
  const top = String(issue.path[0] ?? '');
  if (issue.code === 'invalid_type' && body[top] === undefined) return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  if (issue.code === 'too_small' && Array.isArray(issue.input ?? body[top]) && issue.path.length === 1) {
    return invalidRequest(`Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`, param, 'empty_array');
  }
  return invalidRequest(`Invalid value for '${param}': ${issue.message}.`, param, 'invalid_value');
}
