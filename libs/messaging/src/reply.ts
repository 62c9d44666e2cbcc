import { RpcException } from '@nestjs/microservices';
import { replyErrorSchema, type ReplyError } from '@keyless/contracts';
import { isDatabaseUnavailable } from '@keyless/database';
import { InvalidPayloadError } from './errors.js';

/** The body of a reply message: the handler's result, or an error with a stable code. */
export type ReplyEnvelope = { ok: true; data: unknown } | { ok: false; error: ReplyError };

/** Application property that marks a message as a reply of this transport (and its format). */
export const replyFormatProperty = 'keyless-reply';

/**
 * Maps a handler failure to the error the requester sees:
 * - `RpcException` whose error is a `{ code, message }` with a known code → as is (handlers say `not-found` so);
 * - {@link InvalidPayloadError} → `invalid-request` with the fields;
 * - the auth library's `AccessDeniedError` or `DatabaseAccessDeniedError` → `access-denied` (details stay in the
 *   service's logs);
 * - throttling or unavailable dependencies (HTTP 429/5xx, retryable Service Bus errors, timeouts, the database
 *   unreachable or restarting) → `dependency-unavailable`;
 * - anything else → `internal`, with the error's message.
 */
export function toReplyError(error: unknown): ReplyError {
  if (error instanceof RpcException) {
    const payload = replyErrorSchema.safeParse(error.getError());
    if (payload.success) return payload.data;
    return { code: 'internal', message: String((error.getError() as { message?: unknown })?.message ?? error.getError()) };
  }
  if (error instanceof InvalidPayloadError) return { code: 'invalid-request', message: error.message, details: error.issues };
  const name = (error as { name?: string })?.name ?? '';
  const message = error instanceof Error ? error.message : String((error as { message?: unknown })?.message ?? error);
  if (name === 'AccessDeniedError' || name === 'DatabaseAccessDeniedError') return { code: 'access-denied', message: 'The service is not allowed to use an Azure resource it needs (see its logs).' };
  const status = Number((error as { status?: unknown; statusCode?: unknown })?.status ?? (error as { statusCode?: unknown })?.statusCode);
  const retryable = (error as { retryable?: unknown })?.retryable === true;
  if (status === 429 || status >= 500 || retryable || isDatabaseUnavailable(error) || /timeout|timed out|ECONNREFUSED|ECONNRESET/i.test(`${name} ${message}`)) {
    return { code: 'dependency-unavailable', message };
  }
  return { code: 'internal', message };
}

/** Issues of a failed zod parse as `{ path, message }`. */
export function issuesOf(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}
