import type { MessageHandler } from '@nestjs/microservices';
import type { ZodType } from 'zod';
import type { RemoteErrorPayload } from './errors.js';
import type { HandlingOutcome } from './settlement-policy.js';
import { issuesOf } from './reply.js';

/**
 * Checks that a received body can be handled: a JSON object, a handler and a contract for its pattern, a
 * payload that passes the contract's schema. Returns the handler and the parsed payload, or why not (for
 * the settlement policy). Shared by the Service Bus server and the in-memory test double.
 */
export function prepare(
  body: unknown,
  pattern: string,
  schema: ZodType | undefined,
  handler: MessageHandler | null,
): { handler: MessageHandler; data: unknown } | Extract<HandlingOutcome, { kind: 'unhandleable' }> {
  if (body === undefined || body === null || Buffer.isBuffer(body) || body instanceof Uint8Array || typeof body !== 'object') {
    return { kind: 'unhandleable', reason: 'UndecodableBody', description: `body of "${pattern}" is not a JSON object (${describeBody(body)})` };
  }
  if (!schema || !handler) {
    return { kind: 'unhandleable', reason: 'NoHandler', description: `no handler for subject "${pattern}" on this service` };
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error).map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    return { kind: 'unhandleable', reason: 'SchemaValidationFailed', description: `payload of "${pattern}" is invalid: ${issues}` };
  }
  return { handler, data: parsed.data };
}

/**
 * The error reply to a request that cannot be handled as sent (settlement rule 2): `invalid-request`, except when this
 * service has no handler for the pattern — the requester runs a newer contract than the service (a deployment in
 * progress, a route added before its handler), which is no fault of the requester's caller: `internal`, reason
 * `NoHandler`.
 */
export function unhandleableReply(outcome: Extract<HandlingOutcome, { kind: 'unhandleable' }>): RemoteErrorPayload {
  if (outcome.reason === 'NoHandler') return { code: 'internal', reason: 'NoHandler', message: outcome.description };
  return { code: 'invalid-request', message: outcome.description };
}

function describeBody(body: unknown): string {
  if (body === undefined || body === null) return 'empty';
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return `${body.length} bytes that are not JSON`;
  return typeof body;
}
