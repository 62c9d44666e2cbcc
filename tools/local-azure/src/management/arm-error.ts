import type { ServerResponse } from 'node:http';
import { sendJson } from '../http/http-kit.js';

/**
 * A refusal of the management API, with ARM's status, `{error:{code,message}}` body and, for 401s, the
 * `WWW-Authenticate` challenge that tells a client where to get a token.
 */
export class ArmError extends Error {
  override readonly name = 'ArmError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** Sends an {@link ArmError} as ARM does. */
export function sendArmError(response: ServerResponse, error: ArmError): void {
  sendJson(response, error.status, { error: { code: error.code, message: error.message } }, { ...error.headers });
}
