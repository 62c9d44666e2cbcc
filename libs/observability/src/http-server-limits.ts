import type { Server } from 'node:http';
import { Inject, Logger, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  answerClientErrors,
  endpointOf,
  httpServerOptions,
  logLineBound,
  refusalLogLines,
  type ClientErrorRefusal,
  type CutOffResponse,
  type HttpServerLimits,
  type RefusedClientRequest,
} from '@keyless/contracts';

/** Injection token of the {@link HttpServerLimits} that {@link HttpServerLimitsModule} applies. */
export const HTTP_SERVER_LIMITS = Symbol('HTTP_SERVER_LIMITS');

/**
 * Sets a Node HTTP server's limits on slow clients (see `httpServerOptions` of @keyless/contracts; without `limits`,
 * Node's own), and makes it answer a request its parser refuses — a malformed request, headers too large, a client
 * past those limits — with problem details like every other refusal of a service, not Node's bare status line, and log
 * it ({@link refusalLog}: `listener` names the listener in that line). A response cut off because its request timed
 * out (or its body was malformed) after the response began is logged too ({@link cutOffLog}). Called before the server
 * listens: Node reads how often it enforces the limits when it starts listening.
 */
export function applyHttpServerLimits(server: Server, limits?: HttpServerLimits, listener = 'app'): void {
  if (limits) Object.assign(server, httpServerOptions(limits));
  answerClientErrors(server, (refusal) => ({ contentType: 'application/problem+json', body: JSON.stringify(problemDetails(refusal)) }), {
    onRefused: refusalLog(listener),
    onCutOff: cutOffLog(listener),
  });
}

/**
 * Logs each request a listener's HTTP parser refused as one warn line of the service's logger (context `HttpParser`):
 * nothing else sees such a request — no route, no middleware, no access line. The line names the status, the kind,
 * Node's error code, the client's address and port and the listener (its name and address); never the bytes received
 * or the parser's message (`answerClientErrors` hands over neither). At most `linesPerMinute` lines a minute per
 * listener, the rest counted (`refusalLogLines` of @keyless/contracts has the rules).
 */
export function refusalLog(listener: string, linesPerMinute?: number, now?: () => number): (refused: RefusedClientRequest) => void {
  const log = new Logger('HttpParser');
  const lineOf = refusalLogLines(listener, linesPerMinute, now);
  return (refused) => {
    const line = lineOf(refused);
    if (line) log.warn(line.fields, line.message);
  };
}

/**
 * Logs each response a listener cut off (`CutOffResponse` of @keyless/contracts) as one warn line of the service's
 * logger (context `HttpParser`): the method, the path without its query, the status already sent, the milliseconds
 * since the request's headers, Node's code, the client and the listener — never a header or a byte. Without it the
 * client's broken response would look like a network drop in every log. The same bound as {@link refusalLog}: the
 * client chooses when its request times out.
 */
export function cutOffLog(listener: string, linesPerMinute?: number, now?: () => number): (cutOff: CutOffResponse) => void {
  const log = new Logger('HttpParser');
  const bound = logLineBound(linesPerMinute, now);
  return ({ method, path, status, elapsedInMs, code, remoteAddress, remotePort, localAddress, localPort }) => {
    const allowed = bound();
    if (!allowed) return;
    const fields = {
      method,
      path,
      status,
      elapsedInMs,
      code,
      client: { address: remoteAddress, port: remotePort },
      listener: { name: listener, address: localAddress, port: localPort },
      ...(allowed.notLoggedBefore ? { notLoggedBefore: allowed.notLoggedBefore } : {}),
    };
    const message = [
      `${method} ${path} cut off after ${status} was sent, ${elapsedInMs} ms after its headers (${code}) for ${endpointOf(remoteAddress, remotePort)} on the ${listener} listener ${endpointOf(localAddress, localPort)}: the request was still arriving when Node gave up on it, so the connection was closed mid-response`,
      ...(allowed.notLoggedBefore ? [`${allowed.notLoggedBefore} earlier cut-off responses on this listener were not logged`] : []),
      ...(allowed.lastOfMinute ? ['further cut-off responses on this listener are not logged for the rest of the minute'] : []),
    ].join('; ');
    log.warn(fields, message);
  };
}

/** RFC 9457 problem details of a refusal, with a stable `type` per kind as the gateway's problems have. */
function problemDetails({ kind, status, title, detail }: ClientErrorRefusal): { type: string; title: string; status: number; detail: string } {
  return { type: `https://keyless.dev/problems/${kind}`, title, status, detail };
}

/**
 * Applies the service's {@link HttpServerLimits} (provided as {@link HTTP_SERVER_LIMITS}) to the app's HTTP server once
 * the app is initialised, before it listens: `app.listen` initialises first, whoever calls it (`startService`, a test).
 */
@Module({})
export class HttpServerLimitsModule implements OnApplicationBootstrap {
  constructor(
    @Inject(HTTP_SERVER_LIMITS) private readonly limits: HttpServerLimits,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (server) applyHttpServerLimits(server, this.limits, 'app');
  }
}
