import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import { answerClientErrors, httpServerOptions, refusalLogLines, type ClientErrorBody, type ClientErrorKind, type ClientErrorRefusal } from '@keyless/contracts';
import type { AuditLog } from '../audit/audit-log.js';
import type { LocalAzureConfig } from '../config/local-azure-config.js';
import type { ConsoleLog } from '../data-plane.js';

/** Node's own: the SDKs' keep-alive agents reuse a connection for a few seconds. */
const keepAliveTimeoutInMs = 5_000;

/**
 * Options for `http.createServer` / `https.createServer` that hold every listener of the local Azure to
 * `network.limits`: 408 and the connection closed for a client that trickles its headers or its request (checked
 * within a second, not Node's 30 s), and a TLS handshake that does not finish in time dropped. `override` sets a
 * listener's own limits (a longer request timeout for large bodies, a longer keep-alive).
 */
export function listenerOptions(
  limits: LocalAzureConfig['network']['limits'],
  override: { requestTimeoutInMs?: number; keepAliveTimeoutInMs?: number } = {},
): ReturnType<typeof httpServerOptions> & { handshakeTimeout: number } {
  return {
    ...httpServerOptions({
      headersTimeoutInMs: limits.httpHeadersTimeoutInMs,
      // Never below the headers timeout, which Node refuses (a listener's own request timeout may be shorter).
      requestTimeoutInMs: Math.max(override.requestTimeoutInMs ?? limits.httpRequestTimeoutInMs, limits.httpHeadersTimeoutInMs),
      keepAliveTimeoutInMs: override.keepAliveTimeoutInMs ?? keepAliveTimeoutInMs,
    }),
    handshakeTimeout: limits.tlsHandshakeTimeoutInMs,
  };
}

/** How a listener words a request that Node's HTTP parser refused, in the error shape of the service it emulates. */
export type ClientErrorShape = (refusal: ClientErrorRefusal) => ClientErrorBody;

/** The refusals' codes in Azure's common error body: ARM's names for their statuses. */
const azureErrorCodes: Readonly<Record<ClientErrorKind, string>> = {
  'malformed-request': 'BadRequest',
  'request-timeout': 'RequestTimeout',
  'chunk-extensions-too-large': 'RequestEntityTooLarge',
  'headers-too-large': 'RequestHeaderFieldsTooLarge',
};

/**
 * Azure's common error body, `{"error":{"code","message"}}`: ARM's, AI Vision's and Azure OpenAI's own (as opposed to
 * OpenAI's request validation), and the router's answer where no route is, so the identity endpoint's too.
 */
export const azureClientErrorShape: ClientErrorShape = ({ kind, detail }) => ({
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify({ error: { code: azureErrorCodes[kind], message: detail } }),
});

/** Where a listener logs the requests its HTTP parser refused, and its name in those lines. */
export interface RefusalLogTarget {
  /** The listener's name: the key of the resource it serves (`identity`, `login`, `management`, `portal`, `serviceBus`, `openAi`, `vision`). */
  listener: string;
  /** The local Azure's logs: a refusal is a record of `refusals()`, which the portal's logs page shows. */
  auditLog: AuditLog;
  /** The local Azure's console: a refusal is an `[http]` line. */
  log: ConsoleLog;
}

/**
 * `server`, made to answer a request that Node's HTTP parser refuses — malformed, headers over 16 KiB, a client past
 * `network.limits` — with a whole response in `shape` (see `answerClientErrors` of @keyless/contracts) instead of
 * Node's bare status line. Never a word of the parser's own message or of the bytes received. Each refusal is logged
 * as the services log theirs (`refusalLogLines` of @keyless/contracts: status, kind, Node's code, the client and the
 * listener; at most 60 lines a minute per listener, the rest counted): a record in `target.auditLog` and a line on
 * `target.log`. Nothing else sees such a request: no route, no authorization, no sign-in.
 */
export function answeringClientErrors<Listener extends Server | HttpsServer>(server: Listener, target: RefusalLogTarget, shape: ClientErrorShape = azureClientErrorShape): Listener {
  const lineOf = refusalLogLines(target.listener);
  answerClientErrors(server, shape, {
    onRefused: (refused) => {
      const line = lineOf(refused);
      if (!line) return;
      target.auditLog.recordRefusal(line);
      target.log(`[http] ${line.message}`);
    },
  });
  return server;
}

/** A request handler; `params` holds the named groups of the route's pattern. */
export type Handler = (request: IncomingMessage, response: ServerResponse, context: RouteContext) => Promise<void> | void;

export interface RouteContext {
  params: Record<string, string>;
  url: URL;
}

/** Where a router reports an unexpected failure (the local Azure's console); the caller never sees it. */
export type FailureLog = (line: string) => void;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

/** How a router answers what no route handles, where the JSON defaults do not fit (the portal answers HTML pages). */
export interface RouterFallbacks {
  /** A known path asked with another method. **Default**: 405 `{"error":{"code":"MethodNotAllowed",…}}`. */
  methodNotAllowed?: Handler;
  /** A handler failed before answering (the detail is logged first). **Default**: 500 `{"error":{"code":"InternalServerError",…}}`. */
  failed?: (request: IncomingMessage, response: ServerResponse) => void;
}

/**
 * A minimal router for the local Azure's HTTP endpoints (no framework: start-up stays well under a
 * second and each endpoint controls its exact Azure response shape).
 */
export class Router {
  private readonly routes: Route[] = [];

  constructor(
    /** Writes an unexpected failure, with its stack, where the operator sees it. */
    private readonly log: FailureLog,
    private readonly notFound: Handler = (_req, res) => sendJson(res, 404, { error: { code: 'NotFound', message: 'Resource not found' } }),
    private readonly fallbacks: RouterFallbacks = {},
  ) {}

  on(method: string, pattern: RegExp, handler: Handler): this {
    this.routes.push({ method, pattern, handler });
    return this;
  }

  /** The request listener to hand to `http.createServer` / `https.createServer`. */
  listener(): (request: IncomingMessage, response: ServerResponse) => void {
    return (request, response) => {
      const url = parseRequestUrl(request, 'http://local');
      if (!url) return sendInvalidUrl(response);
      const pathMatches = this.routes.filter((route) => route.pattern.test(url.pathname));
      const route = pathMatches.find((r) => r.method === request.method);
      const handler: Handler = route
        ? route.handler
        : pathMatches.length
          ? (this.fallbacks.methodNotAllowed ?? ((_req, res) => sendJson(res, 405, { error: { code: 'MethodNotAllowed', message: `${request.method} is not supported here` } })))
          : this.notFound;
      const params = route ? { ...(url.pathname.match(route.pattern)?.groups ?? {}) } : {};
      Promise.resolve()
        .then(() => handler(request, response, { params, url }))
        .catch((error: unknown) => {
          // The detail (a message, a stack, a path) is for the console: a caller learns only that it failed.
          this.log(`${request.method} ${url.pathname}: ${(error as Error)?.stack ?? String(error)}`);
          if (!response.headersSent) {
            if (this.fallbacks.failed) this.fallbacks.failed(request, response);
            else sendJson(response, 500, { error: { code: 'InternalServerError', message: internalFailureMessage } });
          } else {
            response.destroy();
          }
        });
    };
  }
}

/**
 * The request's URL, resolved against `base`, or undefined when its target cannot be parsed. Node's HTTP parser
 * passes request targets such as `//[` or `http://%zz/` through, and `new URL` throws on them: parsed unguarded in
 * a request listener, one anonymous request would end the process.
 */
export function parseRequestUrl(request: IncomingMessage, base: string): URL | undefined {
  return URL.parse(request.url ?? '/', base) ?? undefined;
}

/** The front end's answer to a request target it cannot parse: HTTP.sys's `400 Bad Request - Invalid URL`, as Azure's endpoints send it. */
export function sendInvalidUrl(response: ServerResponse): void {
  const body = '<h2>Bad Request - Invalid URL</h2><hr><p>HTTP Error 400. The request URL is invalid.</p>';
  response.writeHead(400, { 'content-type': 'text/html; charset=us-ascii', 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
}

/** What a caller is told of an unexpected failure: the detail (a message, a stack, a path) is for the console only. */
export const internalFailureMessage = 'The local Azure failed to process the request; its console has the details.';

/** Headers of a response that carries a token or another credential: stored by no cache on the way (RFC 6749 5.1). */
export const noStoreHeaders: Readonly<Record<string, string>> = { 'cache-control': 'no-store', pragma: 'no-cache' };

/** Sets {@link noStoreHeaders} on a response before its handler writes it. */
export function setNoStore(response: ServerResponse): void {
  for (const [name, value] of Object.entries(noStoreHeaders)) response.setHeader(name, value);
}

/** Writes a JSON response. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  response.end(payload);
}

/** Thrown by {@link readBody} when a body exceeds its limit. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** Reads a request body up to `limitBytes`; a larger body is refused without reading it all. */
export function readBody(request: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limitBytes) {
      request.resume();
      return reject(new BodyTooLargeError(`body of ${declared} bytes exceeds ${limitBytes}`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        request.removeAllListeners('data');
        request.resume();
        reject(new BodyTooLargeError(`body exceeds ${limitBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** A request id in Azure's style (echoed as `x-ms-request-id`, logged with failures). */
export function requestId(request: IncomingMessage): string {
  const given = request.headers['x-ms-client-request-id'];
  return typeof given === 'string' && given.length <= 64 ? given : randomUUID();
}
