import { Controller, Get, Module, SetMetadata } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { AuthHealthIndicator } from '@keyless/auth';
import { MessagingHealthIndicator } from '@keyless/messaging';

/** Metadata key of routes that need no caller token (health probes). */
export const publicRouteKey = 'keyless:public';

/** Marks a route or controller as public: caller authentication skips it. */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(publicRouteKey, true);

/**
 * `/health/live`: the process answers. `/health/ready`: the identity holds its tokens and every Service
 * Bus link is attached — what App Service, compose and the launcher wait for before sending traffic.
 */
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly auth: AuthHealthIndicator,
    private readonly messaging: MessagingHealthIndicator,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.auth.isHealthy('identity'), () => this.messaging.check('servicebus')]);
  }
}

/** Liveness and readiness endpoints for a Keyless service (needs `AuthModule` and `MessagingModule`). */
@Module({ imports: [TerminusModule], controllers: [HealthController] })
export class HealthModule {}
