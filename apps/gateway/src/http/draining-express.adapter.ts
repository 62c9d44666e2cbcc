import type { Server, ServerResponse } from 'node:http';
import { Logger } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';

export const drainDefaults = {
  /**
   * Longest a shutdown waits for requests in flight before it closes every connection. It leaves room in the
   * process's stop bound (`@keyless/observability`: 7 s for the app to close, the whole stop within 8 s) for the
   * bus client's close, so a stop ends within docker's 10 s grace before SIGKILL. A request waiting this long waits
   * for a reply that is not coming (Service Bus or the service behind it is gone): its timeout
   * (`REQUEST_TIMEOUT_MS`, 10 s) would end it later than the platform allows.
   */
  graceInMs: 4_000,
};

/**
 * Nest's Express adapter with a shutdown that ends. `server.close()` waits for every connection to close, and a
 * caller on a keep-alive connection that never pauses (a load balancer, a busy client) keeps its connection open
 * for ever: SIGTERM under load never finished, and the platform had to SIGKILL the gateway.
 *
 * Rules, once {@link close} is called:
 * 1. The listener stops accepting connections and idle connections are closed (Node's `server.close()`).
 * 2. Every response not yet started — of requests in flight or arriving on an open connection — says
 *    `Connection: close`, and its connection closes once it is sent: requests in flight are answered, not cut.
 * 3. After `graceInMs`, whatever is still open is closed, with one warning saying how many requests were cut short
 *    (their callers get no answer; a PUT or a query may be sent again).
 *
 * @example
 * const adapter = new DrainingExpressAdapter();
 * const app = await NestFactory.create(AppModule, adapter);
 * app.use(adapter.tracker);   // first in the pipeline
 */
export class DrainingExpressAdapter extends ExpressAdapter {
  private closing = false;
  private readonly inFlight = new Set<ServerResponse>();

  constructor(private readonly graceInMs = drainDefaults.graceInMs) {
    super();
  }

  /** Requests being answered now (those that arrived before the shutdown began). */
  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Middleware that knows the responses in flight; goes first, so even a refused request is counted. */
  readonly tracker = (_request: Request, response: Response, next: NextFunction): void => {
    if (this.closing) response.shouldKeepAlive = false;
    else {
      this.inFlight.add(response);
      response.once('close', () => this.inFlight.delete(response));
    }
    next();
  };

  override close(): Promise<unknown> | undefined {
    this.closing = true;
    for (const response of this.inFlight) if (!response.headersSent) response.shouldKeepAlive = false;
    const server = this.getHttpServer() as Server | undefined;
    const deadline = server
      ? setTimeout(() => {
          if (this.inFlight.size) {
            new Logger('Shutdown').warn(`${this.inFlight.size} HTTP requests still unanswered after ${this.graceInMs} ms: closing their connections (their callers get no answer)`);
          }
          server.closeAllConnections();
        }, this.graceInMs)
      : undefined;
    deadline?.unref();
    return super.close()?.finally(() => clearTimeout(deadline));
  }
}
