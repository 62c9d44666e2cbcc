import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * Why Node's HTTP parser refused a request before any request handler saw it.
 * - `malformed-request`: the request line or a header is not valid HTTP/1.1 (400).
 * - `request-timeout`: the headers or the whole request did not arrive within the listener's limits (408).
 * - `chunk-extensions-too-large`: a chunked body's chunk extensions are longer than Node takes (413).
 * - `headers-too-large`: the request's headers are larger than the listener takes (431).
 */
export type ClientErrorKind = 'malformed-request' | 'request-timeout' | 'chunk-extensions-too-large' | 'headers-too-large';

/** A request refused by Node's HTTP parser, in words a client can act on: the parser's own message is never among them. */
export interface ClientErrorRefusal {
  /** Why the request was refused. */
  kind: ClientErrorKind;
  /** The status Node answers such a refusal with: 400, 408, 413 or 431. */
  status: number;
  /** The status's reason phrase (`Request Timeout`), as on the status line. */
  title: string;
  /** What the client should change, naming the listener's limit: `The request's headers exceed 16 KiB: …`. */
  detail: string;
}

/** The body of the answer to a {@link ClientErrorRefusal}, in the listener's own error shape. */
export interface ClientErrorBody {
  /** The body's media type with its charset: `application/problem+json`, `application/json; charset=utf-8`. */
  contentType: string;
  /** The body, whole (its `Content-Length` is computed from it). */
  body: string;
  /** More response headers (a page's security headers). **Default**: none. */
  headers?: Readonly<Record<string, string>>;
}

/**
 * A refusal {@link answerClientErrors} answered, with what an operator needs to find it: never the bytes received nor
 * the parser's message, which can carry a caller's token or data.
 */
export interface RefusedClientRequest {
  /** Why the request was refused. */
  kind: ClientErrorKind;
  /** The status it was answered with: 400, 408, 413 or 431. */
  status: number;
  /** Node's error code: `HPE_HEADER_OVERFLOW`, `ERR_HTTP_REQUEST_TIMEOUT`, `HPE_INVALID_HEADER_TOKEN`, …; `unknown` without one. */
  code: string;
  /** The client's address, as the socket has it (`undefined` when the client has already gone). */
  remoteAddress: string | undefined;
  /** The client's port. */
  remotePort: number | undefined;
  /** The address of the listener the connection came in on. */
  localAddress: string | undefined;
  /** The port of that listener. */
  localPort: number | undefined;
}

/**
 * A response cut off by the server: the parser gave up on its request (the request timeout expired while the client
 * still sent the body, or the body was malformed) after the response had begun, so the connection was closed with the
 * response unfinished. What the client saw looks like a network drop; this says it was not. Never a header or a byte of
 * the request or the response.
 */
export interface CutOffResponse {
  /** The request's method. */
  method: string;
  /** The request's path, without its query (which can carry a caller's data). */
  path: string;
  /** The status already sent. */
  status: number;
  /** Milliseconds from the request's headers to the cut. */
  elapsedInMs: number;
  /** Node's error code: `ERR_HTTP_REQUEST_TIMEOUT`, or the parser's for a malformed body (`HPE_INVALID_CHUNK_SIZE`, …). */
  code: string;
  /** The client's address, as the socket has it. */
  remoteAddress: string | undefined;
  /** The client's port. */
  remotePort: number | undefined;
  /** The address of the listener the connection came in on. */
  localAddress: string | undefined;
  /** The port of that listener. */
  localPort: number | undefined;
}

/** Options of {@link answerClientErrors}. */
export interface AnswerClientErrorsOptions {
  /**
   * Called once per refusal answered, after the answer is written, synchronously (it must not throw: it runs in the
   * server's `clientError` event). Not called for a connection closed without a word (reset, no longer writable, a
   * response already begun). **Default**: none.
   */
  onRefused?: (refused: RefusedClientRequest) => void;
  /**
   * Called once per response cut off (see {@link CutOffResponse}), after the connection is closed, synchronously (it
   * must not throw). Not called when the client reset the connection or had gone: that is a network drop.
   * **Default**: none.
   */
  onCutOff?: (cutOff: CutOffResponse) => void;
}

/** How Node names the refusals (`error.code`): every other parser error is a malformed request. */
const kindsByCode: Readonly<Record<string, ClientErrorKind>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'chunk-extensions-too-large',
  HPE_HEADER_OVERFLOW: 'headers-too-large',
};

const statuses: Readonly<Record<ClientErrorKind, number>> = { 'malformed-request': 400, 'request-timeout': 408, 'chunk-extensions-too-large': 413, 'headers-too-large': 431 };

/**
 * Makes `server` answer a request its HTTP parser refuses (Node's `clientError`) with a whole response — the status Node
 * would send, `Content-Type` and `Content-Length` of the body `bodyOf` makes, `Connection: close` — instead of Node's
 * bare status line, then closes the connection. A connection the client reset, one no longer writable, or one whose
 * response has already begun (a request timing out while its handler answers) is closed without a word, as Node does.
 * `options.onRefused` hears of each refusal answered (a service logs it: no request handler or access log sees it), and
 * `options.onCutOff` of each response so cut off.
 *
 * @example
 * answerClientErrors(server, (refusal) => ({ contentType: 'application/problem+json', body: JSON.stringify({ title: refusal.title, status: refusal.status, detail: refusal.detail }) }), {
 *   onRefused: ({ status, code, remoteAddress, remotePort }) => logger.warn({ status, code, remoteAddress, remotePort }, 'request refused by the HTTP parser'),
 * });
 */
export function answerClientErrors(server: Server | HttpsServer, bodyOf: (refusal: ClientErrorRefusal) => ClientErrorBody, options: AnswerClientErrorsOptions = {}): void {
  const { onCutOff } = options;
  // When each request's headers arrived, for the elapsed time of a cut-off response (kept only when someone hears of it).
  const startedAt = new WeakMap<IncomingMessage, number>();
  if (onCutOff) server.prependListener('request', (request: IncomingMessage) => startedAt.set(request, performance.now()));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // Node's own handler reads the same property: the response of a request whose handler already runs (a finished
    // response is no longer there).
    const inFlight = (socket as { _httpMessage?: ServerResponse })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (inFlight?.headersSent) {
      // Node gives up on a request only while receiving it: the handler answered before the client finished sending
      // its body. Nothing more can be said on this connection, but an operator can be told.
      const { remoteAddress, remotePort, localAddress, localPort } = socket as Partial<Socket>;
      socket.destroy();
      const request = inFlight.req;
      const started = startedAt.get(request);
      onCutOff?.({
        method: request.method ?? 'unknown',
        path: (request.url ?? '/').split('?')[0]!,
        status: inFlight.statusCode,
        elapsedInMs: started === undefined ? 0 : Math.round(performance.now() - started),
        code: error.code ?? 'unknown',
        remoteAddress,
        remotePort,
        localAddress,
        localPort,
      });
      return;
    }
    const kind = kindsByCode[error.code ?? ''] ?? 'malformed-request';
    const status = statuses[kind];
    const title = STATUS_CODES[status]!;
    const { contentType, body, headers = {} } = bodyOf({ kind, status, title, detail: detailOf(kind, server) });
    const head = [
      `HTTP/1.1 ${status} ${title}`,
      `Content-Type: ${contentType}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      'Connection: close',
    ];
    // In one write, then closed at once as Node closes it: nothing more of the request is read.
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
    // Read before the socket is destroyed: a destroyed socket no longer knows its addresses.
    const { remoteAddress, remotePort, localAddress, localPort } = socket as Partial<Socket>;
    socket.destroy();
    options.onRefused?.({ kind, status, code: error.code ?? 'unknown', remoteAddress, remotePort, localAddress, localPort });
  });
}

function detailOf(kind: ClientErrorKind, server: Server | HttpsServer): string {
  switch (kind) {
    case 'request-timeout':
      // A request timeout of 0 is none (Node's option).
      return `The request did not arrive in time: send its headers within ${duration(server.headersTimeout)}${server.requestTimeout > 0 ? ` and the whole request within ${duration(server.requestTimeout)}` : ''}.`;
    case 'headers-too-large':
      // A server's own `maxHeaderSize` option, else the process's (`--max-http-header-size`, 16 KiB by default).
      return `The request's headers exceed ${size((server as { maxHeaderSize?: number }).maxHeaderSize ?? maxHeaderSize)}: send fewer or shorter headers.`;
    case 'chunk-extensions-too-large':
      return 'The chunk extensions of the request body are too long: send its chunks without extensions.';
    case 'malformed-request':
      return 'The request line or a header is not valid HTTP/1.1: send a well-formed request.';
  }
}

function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function size(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

/** One line a listener logs about a request its parser refused: the structured fields and the message. */
export interface RefusalLogLine {
  fields: {
    status: number;
    kind: ClientErrorKind;
    code: string;
    client: { address: string | undefined; port: number | undefined };
    listener: { name: string; address: string | undefined; port: number | undefined };
    /** Refusals on this listener left out of the log since its last line (present when there were some). */
    notLoggedBefore?: number;
  };
  /** `400 malformed-request (HPE_INVALID_METHOD) for 127.0.0.1:50312 on the app listener 127.0.0.1:8080: refused by …`. */
  message: string;
}

const refusalLogDefaults = {
  /**
   * Lines a listener logs per minute about requests its parser refused; the rest are counted, not logged. Such a
   * request passes no rate limit (it is refused before any route or middleware), and a refusal costs its client only
   * a new connection: without a bound, a flood of malformed requests would write the log as fast as it can send them.
   */
  linesPerMinute: 60,
};

/**
 * A bound on the lines a listener logs about what any client can cause at will: at most `linesPerMinute` in a minute.
 * Each call asks for one more line: undefined when the minute's lines are spent, else how many were left out before it.
 * Rules:
 * - A minute starts with the first line asked for after the previous one ended.
 * - Lines asked for past `linesPerMinute` in a minute are counted, not allowed; the first line allowed after that
 *   minute carries the count (`notLoggedBefore`).
 * - The minute's last line allowed is marked `lastOfMinute`, so it can say that the rest are not logged.
 */
export function logLineBound(linesPerMinute = refusalLogDefaults.linesPerMinute, now: () => number = Date.now): () => { notLoggedBefore: number; lastOfMinute: boolean } | undefined {
  let minuteStartedAt = -Infinity;
  let logged = 0;
  let notLogged = 0;
  return () => {
    const at = now();
    let notLoggedBefore = 0;
    if (at - minuteStartedAt >= 60_000) {
      notLoggedBefore = notLogged;
      minuteStartedAt = at;
      logged = 0;
      notLogged = 0;
    }
    if (logged >= linesPerMinute) {
      notLogged += 1;
      return undefined;
    }
    logged += 1;
    return { notLoggedBefore, lastOfMinute: logged === linesPerMinute };
  };
}

/**
 * The lines the listener named `listener` logs about the requests its parser refused ({@link answerClientErrors}'s
 * `onRefused`), within {@link logLineBound}: at most `linesPerMinute` a minute (**Default**: 60), the last of a minute
 * saying that further ones are not, the first after it how many were not (`notLoggedBefore`); undefined for a refusal
 * not logged. A line names the status, the kind, Node's error code, the client's and the listener's address and port:
 * never the bytes received or the parser's message (which {@link RefusedClientRequest} does not hold).
 *
 * @example
 * const lineOf = refusalLogLines('app');
 * answerClientErrors(server, bodyOf, { onRefused: (refused) => { const line = lineOf(refused); if (line) logger.warn(line.fields, line.message); } });
 */
export function refusalLogLines(listener: string, linesPerMinute = refusalLogDefaults.linesPerMinute, now: () => number = Date.now): (refused: RefusedClientRequest) => RefusalLogLine | undefined {
  const bound = logLineBound(linesPerMinute, now);
  return ({ status, kind, code, remoteAddress, remotePort, localAddress, localPort }) => {
    const allowed = bound();
    if (!allowed) return undefined;
    const { notLoggedBefore, lastOfMinute } = allowed;
    const message = [
      `${status} ${kind} (${code}) for ${endpointOf(remoteAddress, remotePort)} on the ${listener} listener ${endpointOf(localAddress, localPort)}: refused by Node's HTTP parser before any route`,
      ...(notLoggedBefore ? [`${notLoggedBefore} earlier refusals on this listener were not logged`] : []),
      ...(lastOfMinute ? [`further refusals on this listener are not logged for the rest of the minute (at most ${linesPerMinute} lines a minute)`] : []),
    ].join('; ');
    return {
      fields: {
        status,
        kind,
        code,
        client: { address: remoteAddress, port: remotePort },
        listener: { name: listener, address: localAddress, port: localPort },
        ...(notLoggedBefore ? { notLoggedBefore } : {}),
      },
      message,
    };
  };
}

/** `127.0.0.1:8080`, `[::1]:8080`; `unknown` for a socket that no longer knows its address. */
export function endpointOf(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return 'unknown';
  return `${address.includes(':') ? `[${address}]` : address}:${port ?? 'unknown'}`;
}
