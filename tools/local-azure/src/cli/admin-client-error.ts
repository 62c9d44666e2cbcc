/** A failed CLI command, with the message the CLI prints (exit code 2). */
export class AdminClientError extends Error {
  override readonly name = 'AdminClientError';

  constructor(
    message: string,
    /** The ARM error code, when the management API refused. */
    readonly code?: string,
    /** The HTTP status, when the management API answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}
