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

/** The body of an error reply. `details` lists field problems for `invalid-request`. */
export const replyErrorSchema = z.strictObject({
  code: z.enum(replyErrorCodes),
  message: z.string(),
  details: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ReplyError = z.infer<typeof replyErrorSchema>;
