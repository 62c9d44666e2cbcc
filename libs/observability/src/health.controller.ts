import { Controller, Get, Inject, Module, Optional, SetMetadata } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult, type HealthIndicatorFunction } from '@nestjs/terminus';
import { AuthHealthIndicator } from '@keyless/auth';
import { DatabaseHealthIndicator } from '@keyless/database';
import { MessagingHealthIndicator } from '@keyless/messaging';

/** Metadata key of routes that need no caller token (health probes). */
export const publicRouteKey = 'keyless:public';

/** Marks a route or controller as public: caller authentication skips it. */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(publicRouteKey, true);

/**
 * `/health/live`: the process answers. `/health/ready`: the identity holds its tokens, every Service Bus link is
 * attached and, in a service with a database (`DatabaseModule`), its schema is applied and it answers — what App
 * Service, compose and the launcher wait for before sending traffic.
 */
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly auth: AuthHealthIndicator,
    private readonly messaging: MessagingHealthIndicator,
    @Optional() @Inject(DatabaseHealthIndicator) private readonly database: DatabaseHealthIndicator | null,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.auth.isHealthy('identity'), () => this.messaging.check('servicebus')];
    if (this.database) checks.push(() => this.database!.isHealthy('database'));
    return this.health.check(checks);
  }
}

/** Liveness and readiness endpoints for a Keyless service (needs `AuthModule` and `MessagingModule`; `DatabaseModule` if it has one). */
@Module({ imports: [TerminusModule], controllers: [HealthController] })
export class HealthModule {}
