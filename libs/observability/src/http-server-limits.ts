import type { Server } from 'node:http';
import { Inject, Logger, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { answerClientErrors, httpServerOptions, type ClientErrorRefusal, type HttpServerLimits, type RefusedClientRequest } from '@keyless/contracts';

/** Injection token of the {@link HttpServerLimits} that {@link HttpServerLimitsModule} applies. */
export const HTTP_SERVER_LIMITS = Symbol('HTTP_SERVER_LIMITS');

const defaults = {
  /**
   * Lines a listener logs per minute about requests its parser refused; the rest are counted, not logged. Such a
   * request passes no rate limit (it is refused before any middleware), and a refusal costs its client only a new
   * connection: without a bound, a flood of malformed requests would write the log faster than the gateway's
   * per-address limit lets valid requests write access lines.
   */
  refusalLinesPerMinute: 60,
};

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
 * or the parser's message (`answerClientErrors` hands over neither).
 * Rules:
 * - At most `linesPerMinute` lines per listener in a minute (from the first line of that minute); the last one says
 *   that further refusals are not logged for the rest of that minute.
 * - Those not logged are counted: the next line logged says how many (`notLoggedBefore`).
 */
export function refusalLog(listener: string, linesPerMinute = defaults.refusalLinesPerMinute, now: () => number = Date.now): (refused: RefusedClientRequest) => void {
  const log = new Logger('HttpParser');
  let minuteStartedAt = -Infinity;
  let logged = 0;
  let notLogged = 0;
  return ({ status, kind, code, remoteAddress, remotePort, localAddress, localPort }) => {
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
      return;
    }
    logged += 1;
    const client = endpoint(remoteAddress, remotePort);
    const fields = {
      status,
      kind,
      code,
      client: { address: remoteAddress, port: remotePort },
      listener: { name: listener, address: localAddress, port: localPort },
      ...(notLoggedBefore ? { notLoggedBefore } : {}),
    };
    const message = [
      `${status} ${kind} (${code}) for ${client} on the ${listener} listener ${endpoint(localAddress, localPort)}: refused by Node's HTTP parser before any route`,
      ...(notLoggedBefore ? [`${notLoggedBefore} earlier refusals on this listener were not logged`] : []),
      ...(logged === linesPerMinute ? [`further refusals on this listener are not logged for the rest of the minute (at most ${linesPerMinute} lines a minute)`] : []),
    ].join('; ');
    log.warn(fields, message);
  };
}

/** `127.0.0.1:8080`, `[::1]:8080`; `unknown` for a socket that no longer knows its address. */
function endpoint(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return 'unknown';
  return `${address.includes(':') ? `[${address}]` : address}:${port ?? 'unknown'}`;
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
