import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Catch,
  Controller,
  Get,
  Header,
  Inject,
  Injectable,
  Logger,
  Module,
  Optional,
  ServiceUnavailableException,
  SetMetadata,
  UseFilters,
  type ArgumentsHost,
  type ExceptionFilter,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult, type HealthIndicatorFunction, type HealthIndicatorResult } from '@nestjs/terminus';
import { AuthHealthIndicator } from '@keyless/auth';
import { DatabaseHealthIndicator } from '@keyless/database';
import { MessagingHealthIndicator } from '@keyless/messaging';
import { HEALTH_MODULE_OPTIONS, HealthConfigurableModule, type HealthModuleOptions } from './health.module-definition.js';
import { applyHttpServerLimits } from './http-server-limits.js';

/** Metadata key of routes that need no caller token (health probes). */
export const publicRouteKey = 'keyless:public';

/** Marks a route or controller as public: caller authentication skips it. */
export const Public = (): ClassDecorator & MethodDecorator => SetMetadata(publicRouteKey, true);

/** Keys whose string values, anywhere in a health result, identify the identity or where it gets tokens. */
const identifyingKeys = new Set(['clientId', 'principalId', 'objectId', 'endpoint']);

/** What every probe answer carries, as Terminus' `@HealthCheck()` sets it: a cached "up" would hide a service that is down. */
const noCache = 'no-cache, no-store, must-revalidate';

/** The longest reason a readiness warning quotes per check, in characters. */
const maxReasonLength = 200;

/** Where a readiness warning sends the reader for what it leaves out. */
const detailsHint = 'full details on the loopback details listener (HEALTH_DETAILS_PORT)';

/**
 * The readiness checks of a Keyless service: the identity holds its tokens, every Service Bus link is attached and, in
 * a service with a database (`DatabaseModule`), its schema is applied and it answers.
 */
@Injectable()
export class ReadinessChecks {
  private readonly log = new Logger('Health');
  /** `starting` until the first ready result; then `ready` or `lost` after each result. */
  private readiness: 'starting' | 'ready' | 'lost' = 'starting';
  private lostAt = 0;
  /** The failing checks of the last result, comma-separated (to tell a new set of failures from a repeated poll). */
  private failing = '';
  /** Runs begun so far, and the newest one whose result was observed: an older result finishing later is stale. */
  private runsBegun = 0;
  private newestObserved = 0;

  /** When this service began (its checks are expected to fail for a while). */
  private readonly startedAt = Date.now();
  /** Whether start-up has taken longer than `startupWarningAfterInMs` and said so. */
  private startupOverdue = false;

  constructor(
    private readonly health: HealthCheckService,
    private readonly auth: AuthHealthIndicator,
    private readonly messaging: MessagingHealthIndicator,
    @Optional() @Inject(DatabaseHealthIndicator) private readonly database: DatabaseHealthIndicator | null,
    @Optional() @Inject(HEALTH_MODULE_OPTIONS) private readonly options: HealthModuleOptions | null,
  ) {}

  /**
   * The full result, details included (what the details listener serves). It logs readiness transitions, never
   * individual polls (probes come every few seconds; the module imports Terminus with its own logging off).
   * Rules:
   * - While the service has never been ready (start-up), failing checks are expected: debug only, until
   *   `startupWarningAfterInMs` (default 60 s) has passed: then one warn with the failing checks and their reasons,
   *   and one log line when it is ready at last.
   * - Ready → not ready: one warn naming the failing checks, each with its `message` stripped of URLs, GUIDs and
   *   the identity's client id, principal id and endpoint.
   * - Not ready → ready: one log line, with how long readiness was lost.
   * - A poll in the same state: nothing (debug when the set of failing checks changed).
   * - A result of an app shutting down: nothing (Terminus answers 503 then; the service is stopping, not failing).
   * - A result that finishes after one of a later run (the public endpoint and the details listener polled at
   *   once, one check slow): nothing; it is older news, and would log a loss or a recovery that did not happen.
   *
   * @throws {ServiceUnavailableException} with the full result when a check is down (Terminus' behaviour).
   */
  async run(): Promise<HealthCheckResult> {
    const checks: HealthIndicatorFunction[] = [() => this.auth.isHealthy('identity'), () => this.messaging.check('servicebus')];
    if (this.database) checks.push(() => this.database!.isHealthy('database'));
    const run = ++this.runsBegun;
    let result: HealthCheckResult;
    try {
      result = await this.health.check(checks);
    } catch (error) {
      if (error instanceof ServiceUnavailableException) this.observe(error.getResponse() as HealthCheckResult, run);
      throw error;
    }
    this.observe(result, run);
    return result;
  }

  private observe(result: HealthCheckResult, run: number): void {
    if (result.status === 'shutting_down' || run < this.newestObserved) return;
    this.newestObserved = run;
    const down = Object.keys(result.error ?? {});
    const failing = down.join(', ');
    const changed = failing !== this.failing;
    this.failing = failing;
    const seconds = (since: number): string => ((Date.now() - since) / 1000).toFixed(1);
    if (result.status !== 'error') {
      if (this.readiness === 'lost') this.log.log(`ready again after ${seconds(this.lostAt)} s`);
      else if (this.readiness === 'starting' && this.startupOverdue) this.log.log(`ready ${seconds(this.startedAt)} s after start`);
      else if (this.readiness === 'starting') this.log.debug(`ready (${Object.keys(result.details).join(', ')} up)`);
      this.readiness = 'ready';
      return;
    }
    if (this.readiness === 'ready') {
      this.readiness = 'lost';
      this.lostAt = Date.now();
      this.log.warn(`readiness lost: ${failing} down${reasonsOf(result, down)}; ${detailsHint}`);
      return;
    }
    // A start-up that takes too long is explained once: a missing role or an unreachable database shows here.
    const warnAfterInMs = this.options?.startupWarningAfterInMs ?? healthDefaults.startupWarningAfterInMs;
    if (this.readiness === 'starting' && !this.startupOverdue && Date.now() - this.startedAt >= warnAfterInMs) {
      this.startupOverdue = true;
      this.log.warn(`not ready ${seconds(this.startedAt)} s after start: ${failing} down${reasonsOf(result, down)}; ${detailsHint}`);
      return;
    }
    if (changed) this.log.debug(`not ready ${this.readiness === 'starting' ? 'yet' : 'still'}: ${failing} down`);
  }
}

const healthDefaults = {
  /** How long a service may take to become ready before its failing checks are logged as a warning. */
  startupWarningAfterInMs: 60_000,
};

/** ` (name: reason; …)` for the failing checks that give a reason, redacted (see {@link reasonOf}); else empty. */
function reasonsOf(result: HealthCheckResult, down: readonly string[]): string {
  const identifying = identifyingValues(result);
  const reasons = down.flatMap((name) => {
    const reason = reasonOf(result.error?.[name], identifying);
    return reason ? [`${name}: ${reason}`] : [];
  });
  return reasons.length ? ` (${reasons.join('; ')})` : '';
}

/** The string values under {@link identifyingKeys} anywhere in `result` (and the host of each URL), longest first. */
function identifyingValues(result: HealthCheckResult): string[] {
  const found = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (identifyingKeys.has(key) && typeof inner === 'string' && inner) {
          found.add(inner);
          // Socket errors name the endpoint by its host and port alone ("connect ECONNREFUSED 169.254.129.2:8081").
          if (URL.canParse(inner) && new URL(inner).host) found.add(new URL(inner).host);
        } else walk(inner);
      }
    }
  };
  walk(result.details);
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * A check's `message` (each indicator's "why not up"), first line, with the identifying values, URLs and GUIDs
 * (client and object ids) replaced: a database message, for one, quotes the token failure naming the identity
 * and its endpoint.
 */
function reasonOf(check: Record<string, unknown> | undefined, identifying: string[]): string | undefined {
  const message = check?.['message'];
  if (typeof message !== 'string' || !message) return undefined;
  let reason = message.split('\n')[0]!;
  for (const value of identifying) reason = reason.replaceAll(value, '<redacted>');
  reason = reason
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s,;)]+/gi, '<url>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>');
  return reason.length > maxReasonLength ? `${reason.slice(0, maxReasonLength - 1)}…` : reason;
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

/** What the filter uses of Express' response (every Keyless app runs on Nest's Express adapter). */
interface ExpressLikeResponse {
  status(code: number): ExpressLikeResponse;
  set(name: string, value: string): ExpressLikeResponse;
  json(body: unknown): void;
}

/**
 * Answers a readiness check that is down with Terminus' own result (503, each check up or down), whatever exception
 * filter the app applies globally: the gateway's turns every error into problem details, which would hide which check
 * is down and log an error line per probe.
 */
@Catch(ServiceUnavailableException)
export class HealthResultFilter implements ExceptionFilter<ServiceUnavailableException> {
  catch(exception: ServiceUnavailableException, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<ExpressLikeResponse>();
    // As Terminus' @HealthCheck() sets it on a 200: a probe's answer is never cached.
    response.status(exception.getStatus()).set('cache-control', noCache).json(exception.getResponse());
  }
}

/**
 * `/health/live`: the process answers, always `{"status":"ok"}` (200). `/health/ready`: the identity holds its tokens, every Service Bus link is
 * attached and the database (if any) is ready — what App Service, compose and the launcher wait for before sending traffic. It
 * answers only up or down per check; the details are on the details listener (see {@link HealthModuleOptions}).
 */
@Public()
@Controller('health')
@UseFilters(HealthResultFilter)
export class HealthController {
  constructor(private readonly checks: ReadinessChecks) {}

  @Get('live')
  @Header('cache-control', noCache)
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
 * with `detailsPort`, a loopback-only listener serving the readiness details. Readiness is logged when it is lost
 * and when it comes back, not per probe (see {@link ReadinessChecks.run}).
 *
 * @example
 * HealthModule.forRootAsync({ inject: [config.KEY], useFactory: (c: Config) => ({ detailsPort: c.health.detailsPort }) })
 */
@Module({
  // Terminus' own logger writes every failed check at error level with its details (the client id and identity
  // endpoint included): once per probe, and during every start-up. ReadinessChecks logs the transitions instead.
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [ReadinessChecks],
  exports: [ReadinessChecks],
})
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
    applyHttpServerLimits(server, this.options.limits, 'health details');
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
