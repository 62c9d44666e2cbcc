import { isServiceBusError } from '@azure/service-bus';

/** Service Bus error codes that no retry within a request's timeout can fix. */
const permanentSendErrors = new Set(['MessageSizeExceeded', 'MessagingEntityNotFound', 'MessagingEntityDisabled', 'UnauthorizedAccess', 'QuotaExceeded']);

/** Socket errors of a connection that could not be made or was lost. */
const connectionErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** rhea-promise's error when a connection closes before it opened, with no error of its own (connection.js). */
const connectionLostBeforeOpen = 'Failed to connect';

/**
 * Whether a failed send may succeed if tried again shortly: Service Bus errors other than the permanent
 * ones (`ServiceCommunicationProblem`, `ServiceTimeout`, `ServiceBusy`, `GeneralError` …), core-amqp's
 * own errors when they are retryable or a socket error (a broker that is down or restarting shows up as
 * an error named `MessagingError` with code `GeneralError` and syscall `connect`), rhea-promise's bare
 * `Error: Failed to connect` (the connection closed or was reset before it opened: what a send sees while the
 * broker drops connections), and the `AggregateError` the SDK throws after its own retries when each of them was
 * transient. Anything else (a bug, a refused role) is permanent.
 */
export function isTransientSendError(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.length > 0 && error.errors.every(isTransientSendError);
  if (isServiceBusError(error)) return !permanentSendErrors.has(error.code);
  if (error instanceof Error && error.constructor === Error && error.message === connectionLostBeforeOpen) return true;
  // The SDK passes socket errors on with their `syscall` but its own code (`GeneralError`, not retryable).
  const { retryable, code, syscall } = (error ?? {}) as { retryable?: unknown; code?: unknown; syscall?: unknown };
  return retryable === true || typeof syscall === 'string' || (typeof code === 'string' && connectionErrorCodes.has(code));
}
