import { z } from 'zod';

/**
 * Stable codes of a failed request, as the requester sees them (the gateway maps them to HTTP).
 * - `invalid-request`: the request did not match its schema (no retry helps).
 * - `not-found`: the thing asked for does not exist.
 * - `access-denied`: the service's identity lacks a role on an Azure resource (see the service's logs).
 * - `dependency-unavailable`: an Azure resource or downstream service is unavailable or throttling.
 * - `internal`: anything else; the handler's logs have the details.
 */
export const replyErrorCodes = ['invalid-request', 'not-found', 'access-denied', 'dependency-unavailable', 'internal'] as const;
export type ReplyErrorCode = (typeof replyErrorCodes)[number];

/**
 * The body of an error reply. `details` lists field problems for `invalid-request`. `reason` refines `code`
 * with a stable identifier a caller may branch on (`product-not-indexed`, Azure AI Vision's
 * `InvalidImageUrl`): never free text. `message` is for logs; the gateway does not pass it on.
 */
export const replyErrorSchema = z.strictObject({
  code: z.enum(replyErrorCodes),
  message: z.string(),
  reason: z.string().regex(/^[A-Za-z][\w.-]{0,63}$/, 'a stable identifier (letters, digits, ".", "-", "_")').optional(),
  details: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ReplyError = z.infer<typeof replyErrorSchema>;
