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

/** The most rows one list query of the management API returns (`limit`). */
export const maxListLimit = 1000;

/**
 * The `limit` query parameter of a list: `fallback` when absent, else a whole number from 1 to {@link maxListLimit}.
 * @throws {ArmError} 400 `InvalidFilter` naming the value otherwise (`-1` used to return every retained row).
 */
export function listLimit(url: URL, fallback = 100): number {
  const value = url.searchParams.get('limit');
  if (value === null) return fallback;
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > maxListLimit) {
    throw new ArmError(400, 'InvalidFilter', `limit must be a whole number from 1 to ${maxListLimit}, not "${value.slice(0, 40)}".`);
  }
  return limit;
}
