/**
 * Stable codes of {@link DatabaseError}.
 * - `SchemaInvalid`: a schema's migrations are not numbered 1, 2, 3, … (a programming error).
 * - `SchemaConflict`: the database holds what this code cannot work with (e.g. vectors of another dimension).
 */
export type DatabaseErrorCode = 'SchemaInvalid' | 'SchemaConflict';

/** The one error class of `@keyless/database`: a stable `code`, an explicit `name`, the `cause` kept. */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';

  constructor(
    readonly code: DatabaseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Type guard by name (works across copies of the package). */
export function isDatabaseError(error: unknown): error is DatabaseError {
  return error instanceof Error && error.name === 'DatabaseError' && typeof (error as { code?: unknown }).code === 'string';
}

/** Node's codes for a server that cannot be reached or went away. */
const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * SQLSTATEs of a server that is going away, starting or overloaded, or of work that is safe to run again:
 * class 08 (connection exception), 57P01–57P05 (shutdown, crash, starting up, database dropped, idle timeout),
 * class 53 (insufficient resources: too many connections, out of memory), 40001 / 40P01 (serialization failure,
 * deadlock), 55P03 (lock not available) and 25P03 (a connection closed for idling in a transaction).
 */
const unavailableStates = /^(08...|57P0[1-5]|53...|40001|40P01|55P03|25P03)$/;

/** What node-postgres says when the connection fails without a SQLSTATE. */
const unavailableMessages =
  /Connection terminated|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Connection ended unexpectedly|the database system is (starting up|shutting down)/i;

/**
 * Whether `error` (or its cause) means "the database cannot be used right now, try again later" rather than a
 * mistake: the server unreachable, restarting or overloaded, the connection lost, a serialization conflict, the
 * identity's token unobtainable. Callers answer it with 503 / a retry, never 500.
 *
 * @example
 * catch (error) { if (isDatabaseUnavailable(error)) throw new RpcException({ code: 'dependency-unavailable', message }); }
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth += 1) {
    if (typeof current !== 'object') return false;
    const { code, message, name } = current as { code?: unknown; message?: unknown; name?: unknown };
    if (typeof code === 'string' && (networkCodes.has(code) || unavailableStates.test(code))) return true;
    if (name === 'TokenAcquisitionError') return true;
    if (typeof message === 'string' && unavailableMessages.test(message)) return true;
  }
  return false;
}

/** A one-line description of an error for logs and health details (the first line of its message). */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
  const firstLine = text.split('\n')[0]!;
  return firstLine.length > 500 ? `${firstLine.slice(0, 497)}...` : firstLine;
}
