import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Logger,
  Module,
  Optional,
  ServiceUnavailableException,
  SetMetadata,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult, type HealthIndicatorFunction, type HealthIndicatorResult } from '@nestjs/terminus';
import { AuthHealthIndicator } from '@keyless/auth';
import { DatabaseHealthIndicator } from '@keyless/database';
import { MessagingHealthIndicator } from '@keyless/messaging';
import { HEALTH_MODULE_OPTIONS, HealthConfigurableModule, type HealthModuleOptions } from './health.module-definition.js';

/** Metadata key of routes that need no caller token (health probes). */
export const publicRouteKey = 'keyless:public';

/** Marks a route or controller as public: caller authentication skips it. */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(publicRouteKey, true);

/**
 * The readiness checks of a Keyless service: the identity holds its tokens, every Service Bus link is attached and, in
 * a service with a database (`DatabaseModule`), its schema is applied and it answers.
 */
@Injectable()
export class ReadinessChecks {
  constructor(
    private readonly health: HealthCheckService,
    private readonly auth: AuthHealthIndicator,
    private readonly messaging: MessagingHealthIndicator,
    @Optional() @Inject(DatabaseHealthIndicator) private readonly database: DatabaseHealthIndicator | null,
  ) {}

  /**
   * The full result, details included (what the details listener serves).
   *
   * @throws {ServiceUnavailableException} with the full result when a check is down (Terminus' behaviour).
   */
  run(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.auth.isHealthy('identity'), () => this.messaging.check('servicebus')];
    if (this.database) checks.push(() => this.database!.isHealthy('database'));
    return this.health.check(checks);
  }
}

/**
 * A health result with each check reduced to its status: what the public endpoint shows. The details of a
 * check (client id, identity endpoint URL, token expiries, entity paths, the reply session id, last errors)
 * help an attacker as much as an operator, so they are served only by the loopback details listener.
 */
export function withoutDetails(result: HealthCheckResult): HealthCheckResult {
  const strip = (checks: Partial<HealthIndicatorResult> | undefined): HealthIndicatorResult | undefined =>
    checks && Object.fromEntries(Object.entries(checks).flatMap(([name, check]) => (check ? [[name, { status: check.status }]] : [])));
  return {
    status: result.status,
    ...(result.info ? { info: strip(result.info) } : {}),
    ...(result.error ? { error: strip(result.error) } : {}),
    details: strip(result.details)!,
  };
}

/**
 * `/health/live`: the process answers. `/health/ready`: the identity holds its tokens, every Service Bus link is
 * attached and the database (if any) is ready — what App Service, compose and the launcher wait for before sending traffic. It
 * answers only up or down per check; the details are on the details listener (see {@link HealthModuleOptions}).
 */
@Public()
@Controller('health')
export class HealthController {
  constructor(private readonly checks: ReadinessChecks) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  async ready(): Promise<HealthCheckResult> {
    try {
      return withoutDetails(await this.checks.run());
    } catch (error) {
      if (error instanceof ServiceUnavailableException) throw new ServiceUnavailableException(withoutDetails(error.getResponse() as HealthCheckResult));
      throw error;
    }
  }
}

/**
 * Liveness and readiness endpoints for a Keyless service (needs `AuthModule` and `MessagingModule`; `DatabaseModule`
 * if it has one), and,
 * with `detailsPort`, a loopback-only listener serving the readiness details.
 *
 * @example
 * HealthModule.forRootAsync({ inject: [config.KEY], useFactory: (c: Config) => ({ detailsPort: c.health.detailsPort }) })
 */
@Module({ imports: [TerminusModule], controllers: [HealthController], providers: [ReadinessChecks], exports: [ReadinessChecks] })
export class HealthModule extends HealthConfigurableModule implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('Health');
  private server: Server | undefined;

  constructor(
    @Inject(HEALTH_MODULE_OPTIONS) private readonly options: HealthModuleOptions,
    private readonly checks: ReadinessChecks,
  ) {
    super();
  }

  /** The details listener's port, once it listens. */
  get detailsPort(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.detailsPort === undefined) return;
    const host = this.options.detailsHost ?? '127.0.0.1';
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url !== '/health/ready') {
        response.writeHead(404).end();
        return;
      }
      const send = (status: number, body: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
      };
      this.checks.run().then(
        (result) => send(200, result),
        (error: unknown) => (error instanceof ServiceUnavailableException ? send(503, error.getResponse()) : send(500, { status: 'error' })),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.detailsPort, host, () => resolve());
    });
    this.server = server;
    this.log.log(`readiness details on http://${host}:${this.detailsPort}/health/ready (not exposed publicly)`);
  }

  async onApplicationShutdown(): Promise<void> {
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }
}
