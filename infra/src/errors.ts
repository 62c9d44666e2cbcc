/**
 * Why a consistency check could not run at all (a finding about the files is a {@link InfraProblem}, not an error).
 * - `bicep-syntax`: a `.bicep` file could not be read (file:line:column in the message).
 * - `bicep-unsupported`: a construct outside the Bicep subset the checks understand.
 * - `bicep-evaluation`: an expression could not be evaluated (unknown name, wrong type, missing file).
 */
export type InfraCheckErrorCode = 'bicep-syntax' | 'bicep-unsupported' | 'bicep-evaluation';

/** A check that cannot run; the message names the file, the place and what to do. */
export class InfraCheckError extends Error {
  override readonly name = 'InfraCheckError';

  constructor(
    readonly code: InfraCheckErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Type guard by name (works across module copies). */
export function isInfraCheckError(error: unknown): error is InfraCheckError {
  return error instanceof Error && error.name === 'InfraCheckError';
}
