import type { Server } from 'node:http';
import { Inject, Logger, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  answerClientErrors,
  httpServerOptions,
  refusalLogLines,
  type ClientErrorRefusal,
  type HttpServerLimits,
  type RefusedClientRequest,
} from '@keyless/contracts';

/** Injection token of the {@link HttpServerLimits} that {@link HttpServerLimitsModule} applies. */
export const HTTP_SERVER_LIMITS = Symbol('HTTP_SERVER_LIMITS');

/**
 * Sets a Node HTTP server's limits on slow clients (see `httpServerOptions` of @keyless/contracts; without `limits`,
 * Node's own), and makes it answer a request its parser refuses — a malformed request, headers too large, a client
 * past those limits — with problem details like every other refusal of a service, not Node's bare status line, and log
 * it ({@link refusalLog}: `listener` names the listener in that line). Called before the server listens: Node reads how
 * often it enforces the limits when it starts listening.
 */
export function applyHttpServerLimits(server: Server, limits?: HttpServerLimits, listener = 'app'): void {
  if (limits) Object.assign(server, httpServerOptions(limits));
  answerClientErrors(server, (refusal) => ({ contentType: 'application/problem+json', body: JSON.stringify(problemDetails(refusal)) }), { onRefused: refusalLog(listener) });
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
