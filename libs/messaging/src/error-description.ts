// The one error formatter of the transport: client, server, tracing and the settlement policy describe errors alike.

/** A one-line description of an error for logs and dead-letter descriptions (bounded length). */
export function describe(error: unknown): string {
  // The SDK reports an operation that failed on every retry as an AggregateError with an empty message.
  if (error instanceof AggregateError && error.errors.length > 0 && !error.message) {
    return describe(`${describe(error.errors.at(-1))} (${error.errors.length} attempts)`);
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  return text.length > 1000 ? `${text.slice(0, 997)}...` : text;
}
