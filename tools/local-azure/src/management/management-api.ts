import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../config/local-azure-config.js';
import type { ConsoleLog } from '../data-plane.js';
import { BodyTooLargeError, internalFailureMessage, readBody, sendInvalidUrl, sendJson, setNoStore } from '../http/http-kit.js';
import { InvalidScopeError } from '../rbac/scope.js';
import { ArmError, sendArmError } from './arm-error.js';
import type { AccessCheck, ArmCaller, ControlPlaneGuard } from './control-plane-guard.js';

/** One request to the management API, after authentication. */
export interface ManagementRequest {
  method: string;
  url: URL;
  /** Named groups of the route's pattern (already percent-decoded). */
  params: Record<string, string>;
  caller: ArmCaller;
  /** The JSON body (`{}` when empty), read once. @throws {ArmError} 400 for invalid JSON, 413 when too large. */
  body(): Promise<unknown>;
  /** `METHOD path` as the authorization log shows it. */
  operation: string;
}

/** A response other than `200` with the returned value as body. */
export class ManagementReply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
  ) {}
}

/** A route of the management API: what the caller must be allowed, then what it does. */
export interface ManagementRoute {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  pattern: RegExp;
  /**
   * The RBAC checks for this request, evaluated (and logged) before {@link handle}; every one must pass. A route
   * cannot be added without them, so every admin request is authorized.
   */
  access(request: ManagementRequest): readonly AccessCheck[] | Promise<readonly AccessCheck[]>;
  /** The response body (status 200), or a {@link ManagementReply}. */
  handle(request: ManagementRequest): unknown;
}

const defaults = { maxBodyBytes: 64 * 1024 };

/**
 * The management listener: the local counterpart of ARM (and of the Entra portal for what the CLI does). It
 * authenticates every request before routing — an unauthenticated caller learns nothing about the routes — then
 * runs the route's RBAC checks, then the route. Errors use ARM's `{error:{code,message}}`; an unexpected failure
 * answers a generic 500 and is printed on the local Azure's console, never sent to the caller.
 */
export class ManagementApi {
  private readonly routes: ManagementRoute[] = [];
  private healthAnswer: (() => unknown) | undefined;

  constructor(
    private readonly guard: ControlPlaneGuard,
    private readonly log: ConsoleLog,
  ) {}

  /** Adds routes (data planes add their operator routes when they start). */
  add(...routes: ManagementRoute[]): this {
    this.routes.push(...routes);
    return this;
  }

  /**
   * Answers `GET /health` with `answer()` before authentication: the one anonymous route, so that `local-azure
   * status` and container health checks can tell a live instance from a stale `runtime.json`. Its answer must
   * hold nothing but liveness (`{status, instanceId}`).
   */
  health(answer: () => unknown): this {
    this.healthAnswer = answer;
    return this;
  }

  listener(): (request: IncomingMessage, response: ServerResponse) => void {
    return (request, response) => {
      // Answers carry tokens' fruits (a portal sign-in link, role assignments, logs): never stored on the way.
      setNoStore(response);
      this.serve(request, response).catch((error: unknown) => {
        this.log(`[management] ${request.method} ${request.url}: ${(error as Error)?.stack ?? String(error)}`);
        if (!response.headersSent) sendArmError(response, new ArmError(500, 'InternalServerError', internalFailureMessage));
        else response.destroy();
      });
    };
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = requestUrl(request.url ?? '/');
    if (!url) {
      request.resume();
      return sendInvalidUrl(response);
    }
    const method = request.method ?? 'GET';
    const operation = `${method} ${url.pathname}`;
    if (this.healthAnswer && method === 'GET' && url.pathname === '/health') {
      request.resume();
      return sendJson(response, 200, this.healthAnswer());
    }
    try {
      const caller = await this.guard.authenticate(request, operation);
      const matching = this.routes.filter((route) => route.pattern.test(url.pathname));
      const route = matching.find((r) => r.method === method);
      if (!route) {
        throw matching.length
          ? new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`)
          : new ArmError(404, 'NotFound', 'No such management endpoint. See `npm run local-azure -- --help`.');
      }
      const params = decodeGroups(url.pathname.match(route.pattern)?.groups);
      let body: Promise<unknown> | undefined;
      const managementRequest: ManagementRequest = { method, url, params, caller, operation, body: () => (body ??= jsonBody(request)) };
      this.guard.authorize(caller, await route.access(managementRequest), operation);
      const result = await route.handle(managementRequest);
      if (result instanceof ManagementReply) {
        if (result.body === undefined) response.writeHead(result.status).end();
        else sendJson(response, result.status, result.body);
      } else sendJson(response, 200, result);
    } catch (error) {
      request.resume();
      if (error instanceof ArmError) return sendArmError(response, error);
      if (error instanceof InvalidScopeError) return sendArmError(response, new ArmError(400, 'InvalidScope', error.message));
      if (error instanceof ConfigError) return sendArmError(response, new ArmError(400, 'InvalidConfiguration', error.message));
      throw error;
    }
  }
}

/**
 * The request's URL. Repeated slashes in the path are collapsed, as ARM does: SDKs build `/{scope}/providers/…`
 * and callers often pass a scope with its leading slash, giving `//subscriptions/…` (which a URL parser would take
 * for a host name). Undefined for a target no URL parser takes (see parseRequestUrl in http-kit).
 */
function requestUrl(raw: string): URL | undefined {
  const query = raw.indexOf('?');
  const path = (query < 0 ? raw : raw.slice(0, query)).replace(/\/{2,}/g, '/');
  return URL.parse(`${path}${query < 0 ? '' : raw.slice(query)}`, 'https://local') ?? undefined;
}

function decodeGroups(groups: Record<string, string | undefined> | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(groups ?? {})) {
    if (value === undefined) continue;
    try {
      params[key] = decodeURIComponent(value);
    } catch {
      throw new ArmError(400, 'InvalidRequestUri', `The request path segment '${value}' is not valid percent-encoding.`);
    }
  }
  return params;
}

/**
 * The request's JSON body as the object a route takes (`{}` when empty).
 *
 * @throws {ArmError} 400 `InvalidRequestContent` for any other JSON value (`null`, an array, a string, a number),
 * which a route reading its fields would otherwise fail on with a 500.
 */
export async function objectBody(request: ManagementRequest): Promise<Record<string, unknown>> {
  const body = await request.body();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid: it must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

async function jsonBody(request: IncomingMessage): Promise<unknown> {
  let raw: Buffer;
  try {
    raw = await readBody(request, defaults.maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw new ArmError(413, 'RequestEntityTooLarge', `The request body is larger than ${defaults.maxBodyBytes} bytes.`);
    throw error;
  }
  try {
    return raw.length ? (JSON.parse(raw.toString('utf8')) as unknown) : {};
  } catch {
    throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: it is not valid JSON.');
  }
}
