import type { Server } from 'node:http';
import { Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { httpServerOptions, type HttpServerLimits } from '@keyless/contracts';

/** Injection token of the {@link HttpServerLimits} that {@link HttpServerLimitsModule} applies. */
export const HTTP_SERVER_LIMITS = Symbol('HTTP_SERVER_LIMITS');

/**
 * Sets a Node HTTP server's limits on slow clients (see `httpServerOptions` of @keyless/contracts). Called before the
 * server listens: Node reads how often it enforces them when it starts listening.
 */
export function applyHttpServerLimits(server: Server, limits: HttpServerLimits): void {
  Object.assign(server, httpServerOptions(limits));
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
    if (server) applyHttpServerLimits(server, this.limits);
  }
}
