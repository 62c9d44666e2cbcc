import type { ReplyErrorCode } from '@keyless/contracts';

/**
 * Stable codes of the messaging error family.
 * - `RequestTimeout`: no reply arrived within the request's timeout (the request expired unprocessed, or
 *   the handler is slow or down).
 * - `PublishTimeout`: Service Bus did not accept a published event within the proxy's timeout (the broker is
 *   unreachable or not committing); the event may still arrive once it recovers.
 * - `InvalidPayload`: a payload did not match its contract schema (client side: nothing was sent).
 * - `InvalidReply`: a reply did not match its contract (the reply schema, or the error envelope): the
 *   requester gets this instead of data it cannot trust.
 * - `DeadLetterRequested`: a handler asked for its message to be dead-lettered (see {@link DeadLetterError}).
 * - `NotConnected`: the client or server was used after `close()`.
 */
export type MessagingErrorCode = 'RequestTimeout' | 'PublishTimeout' | 'InvalidPayload' | 'InvalidReply' | 'DeadLetterRequested' | 'NotConnected';

/** Base class of every error `@keyless/messaging` raises. */
export class MessagingError extends Error {
  override readonly name: string = 'MessagingError';

  constructor(
    readonly code: MessagingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A request got no reply within its timeout; the request carried the same TTL, so it will not run late. */
export class RequestTimeoutError extends MessagingError {
  override readonly name = 'RequestTimeoutError';

  constructor(
    readonly pattern: string,
    readonly queue: string,
    readonly timeoutInMs: number,
    readonly messageId: string,
    /** When the request could not even be sent in time: the last (transient) send failure. */
    cause?: unknown,
  ) {
    super(
      'RequestTimeout',
      cause === undefined
        ? `No reply to "${pattern}" (message ${messageId} on queue "${queue}") within ${timeoutInMs} ms.`
        : `No reply to "${pattern}" (message ${messageId} on queue "${queue}") within ${timeoutInMs} ms; the request could not be sent meanwhile (${cause instanceof Error ? cause.message : String(cause)}).`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** A payload failed its contract schema; `issues` name each invalid field. */
export class InvalidPayloadError extends MessagingError {
  override readonly name = 'InvalidPayloadError';

  constructor(
    readonly pattern: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super('InvalidPayload', `Payload of "${pattern}" is invalid: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
  }
}

/** A reply broke its contract (`issues` name each invalid field); the requester never sees its data. */
export class InvalidReplyError extends MessagingError {
  override readonly name = 'InvalidReplyError';

  constructor(
    readonly pattern: string,
    /** The request's message id (the reply's correlation id). */
    readonly messageId: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super('InvalidReply', `The reply to "${pattern}" (request ${messageId}) breaks its contract: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
  }
}

/**
 * Thrown by a handler to dead-letter its message at once (no retries), with a reason and a description
 * that operators see on the dead-letter queue.
 *
 * @example
 * throw new DeadLetterError('UnknownProduct', `product ${id} does not exist and never will`);
 */
export class DeadLetterError extends MessagingError {
  override readonly name = 'DeadLetterError';

  constructor(
    readonly reason: string,
    readonly description: string,
  ) {
    super('DeadLetterRequested', `${reason}: ${description}`);
  }
}

/**
 * An error reply from a remote handler, as the requester receives it (Nest's `RpcException` carries it in
 * `getError()`): `{ code, message, details? }` with a stable {@link ReplyErrorCode}.
 */
export interface RemoteErrorPayload {
  code: ReplyErrorCode;
  message: string;
  /** A stable refinement of `code` (see `replyErrorSchema`), when the handler gave one. */
  reason?: string;
  details?: { path: string; message: string }[];
}

const messagingErrorCodes: ReadonlySet<string> = new Set<MessagingErrorCode>(['RequestTimeout', 'PublishTimeout', 'InvalidPayload', 'InvalidReply', 'DeadLetterRequested', 'NotConnected']);

/**
 * Type guard for errors of this family, by name and code (works across module copies). The code matters:
 * `@azure/core-amqp` names its own errors `MessagingError` too (with codes such as `ECONNREFUSED`).
 */
export function isMessagingError(error: unknown): error is MessagingError {
  return (
    error instanceof Error &&
    /^(Messaging|RequestTimeout|InvalidPayload|InvalidReply|DeadLetter)Error$/.test(error.name) &&
    messagingErrorCodes.has(String((error as { code?: unknown }).code))
  );
}
