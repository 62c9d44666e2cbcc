// The one error formatter of the transport: client, server, tracing and the settlement policy describe errors alike.

/**
 * A one-line description of an error for logs and dead-letter descriptions, at most 2,000 characters: enough for a
 * role refusal whole (its principal, role, scope and both fix commands come before Azure's own text, ~1,100
 * characters with a queue's ARM id), far below Service Bus's limits on a dead-letter description.
 */
export function describe(error: unknown): string {
  // The SDK reports an operation that failed on every retry as an AggregateError with an empty message.
  if (error instanceof AggregateError && error.errors.length > 0 && !error.message) {
    return describe(`${describe(error.errors.at(-1))} (${error.errors.length} attempts)`);
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  return text.length > 2000 ? `${text.slice(0, 1997)}...` : text;
}
