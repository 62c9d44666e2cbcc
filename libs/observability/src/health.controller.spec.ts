import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Global, Module, ServiceUnavailableException, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HealthIndicatorService, type HealthCheckResult, type HealthIndicatorResult } from '@nestjs/terminus';
import { AuthHealthIndicator, type AudienceTokenStatus, type AzureIdentityService, type PostgresPool, type ServiceBusClient } from '@keyless/auth';
import { resolveAuthOptions, TokenAcquisitionError } from '@keyless/auth/diagnostics';
import { Database, DatabaseHealthIndicator, type DatabaseStatus } from '@keyless/database';
import { MessagingHealthIndicator, MessagingModule, type ReceiverHealth, type ServiceBusServer } from '@keyless/messaging';
import { RecordingLogger } from '@keyless/testing';
import { HealthModule, ReadinessChecks, withoutDetails } from './health.controller.js';

describe(withoutDetails.name, () => {
  it('keeps each check’s status and nothing else, in info, error and details', () => {
    const full: HealthCheckResult = {
      status: 'error',
      info: { identity: { status: 'up', identity: { clientId: 'c-1', endpoint: 'http://127.0.0.1:1/msi' }, soonestExpiry: '2030-01-01T00:00:00Z' } },
      error: { servicebus: { status: 'down', replySession: { sessionId: 'gateway-x', state: 'reconnecting' }, receivers: [{ entityPath: 'replies' }] } },
      details: {
        identity: { status: 'up', identity: { clientId: 'c-1' } },
        servicebus: { status: 'down', replySession: { sessionId: 'gateway-x' } },
      },
    };
    expect(withoutDetails(full)).toEqual({
      status: 'error',
      info: { identity: { status: 'up' } },
      error: { servicebus: { status: 'down' } },
      details: { identity: { status: 'up' }, servicebus: { status: 'down' } },
    });
  });
});

describe(ReadinessChecks.name, () => {
  // The real indicators, over stand-ins for what they read: the token cache, the Service Bus receivers, the pool.
  const clientId = randomUUID();
  const objectId = randomUUID();
  const endpoint = 'http://127.0.0.1:41234/msi/token';
  const postgres = 'https://ossrdbms-aad.database.windows.net';
  const sources = {
    token: { audience: 'serviceBus', resource: 'https://servicebus.azure.net', valid: false, consecutiveFailures: 0 } as AudienceTokenStatus,
    receivers: [{ entityPath: 'recommendation-requests', state: 'reconnecting', since: new Date().toISOString() }] as ReceiverHealth[],
    database: { state: 'starting', server: '127.0.0.1:5432/keyless', attempts: 1, since: new Date() } as DatabaseStatus,
    query: (): Promise<unknown> => Promise.resolve({ rows: [] }),
  };
  const identity = {
    identity: { mode: 'managed-identity', clientId, endpoint },
    tokenStatus: () => [sources.token],
  } satisfies Pick<AzureIdentityService, 'identity' | 'tokenStatus'>;
  const server = { isListening: () => true, health: () => sources.receivers } satisfies Pick<ServiceBusServer, 'isListening' | 'health'>;
  const database = {
    status: () => sources.database,
    pool: { totalCount: 1, idleCount: 1, waitingCount: 0, query: () => sources.query() },
  } satisfies { status: Database['status']; pool: Pick<Database['pool'], 'totalCount' | 'idleCount' | 'waitingCount'> & { query(): Promise<unknown> } };

  @Global()
  @Module({
    providers: [
      {
        provide: AuthHealthIndicator,
        useValue: new AuthHealthIndicator(new HealthIndicatorService(), identity as AzureIdentityService, resolveAuthOptions({ clientId, audiences: ['serviceBus'] })),
      },
      { provide: MessagingHealthIndicator, useValue: new MessagingHealthIndicator(new HealthIndicatorService(), server as ServiceBusServer, null) },
      // Each poll here asks the stand-in afresh (the reuse of an answer is @keyless/database's, specified there).
      {
        provide: DatabaseHealthIndicator,
        useValue: new DatabaseHealthIndicator(new HealthIndicatorService(), database as unknown as Database, { pool: database.pool as unknown as PostgresPool, schemas: [], healthCheckTimeoutInMs: 1_000, healthCheckMaxAgeInMs: 0 }),
      },
    ],
    exports: [AuthHealthIndicator, MessagingHealthIndicator, DatabaseHealthIndicator],
  })
  class IndicatorsModule {}

  const logger = new RecordingLogger();
  let app: INestApplication;
  let closed = false;
  let base = '';

  /** One poll of an endpoint: its status, its body and the lines logged meanwhile (debug and verbose left out). */
  interface Poll {
    status: number;
    body: string;
    cacheControl: string | null;
    lines: RecordingLogger['lines'];
  }

  async function poll(target: string): Promise<Poll> {
    const from = logger.lines.length;
    const response = await fetch(target);
    const body = await response.text();
    return { status: response.status, body, cacheControl: response.headers.get('cache-control'), lines: logger.lines.slice(from).filter((line) => line.level !== 'debug' && line.level !== 'verbose') };
  }

  function allUp(): void {
    sources.token = { ...sources.token, valid: true, expiresOn: new Date(Date.now() + 3_600_000), consecutiveFailures: 0 };
    delete sources.token.lastFailure;
    sources.receivers = [{ entityPath: 'recommendation-requests', state: 'receiving', since: new Date().toISOString() }];
    sources.database = { ...sources.database, state: 'ready', attempts: 2 };
    sources.query = () => Promise.resolve({ rows: [] });
  }

  /** The identity endpoint goes away: the Service Bus token expires, and the pool's sign-in token cannot be had. */
  function identityEndpointLost(): void {
    const failure = new TokenAcquisitionError(
      'IdentityEndpointUnreachable',
      `No token for ${postgres} (identity ${clientId}): identity endpoint ${endpoint} is unreachable (connect ECONNREFUSED 127.0.0.1:41234). Object id ${objectId}.`,
      { mode: 'managed-identity', clientId, resource: postgres, endpoint },
    );
    sources.token = { ...sources.token, valid: false, consecutiveFailures: 3, lastFailure: { at: new Date(), code: failure.code, message: failure.message, trigger: 'refresh' } };
    sources.query = () => Promise.reject(failure);
  }

  // Readiness goes down (never ready) → up → down → down → up, polled on the public endpoint and the details listener.
  const steps: Record<'starting' | 'ready' | 'lost' | 'stillLost' | 'back', Poll[]> = { starting: [], ready: [], lost: [], stillLost: [], back: [] };

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        IndicatorsModule,
        HealthModule.forRoot({ detailsPort: 0 }),
        // The real messaging module imports Terminus with its defaults (its logger on): it must not bring Terminus'
        // error lines back. Neither side is configured, so the client is never used.
        MessagingModule.forRoot({ client: {} as ServiceBusClient, isGlobal: false }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const url = `${base}/health/ready`;
    const detailsUrl = `http://127.0.0.1:${app.get(HealthModule).detailsPort}/health/ready`;

    steps.starting = [await poll(url), await poll(url), await poll(detailsUrl)];
    allUp();
    steps.ready = [await poll(url)];
    identityEndpointLost();
    steps.lost = [await poll(url)];
    steps.stillLost = [await poll(url), await poll(detailsUrl)];
    allUp();
    steps.back = [await poll(url)];
  });

  afterAll(async () => {
    if (!closed) await app?.close();
  });

  it('answers 503 until ready, 200 when ready, 503 when lost, 200 when back, on both listeners as before', () => {
    expect(Object.values(steps).map((polls) => polls.map((p) => p.status))).toEqual([[503, 503, 503], [200], [503], [503, 503], [200]]);
    expect(JSON.parse(steps.lost[0]!.body)).toEqual({
      status: 'error',
      info: { servicebus: { status: 'up' } },
      error: { identity: { status: 'down' }, database: { status: 'down' } },
      details: { identity: { status: 'down' }, servicebus: { status: 'up' }, database: { status: 'down' } },
    });
    expect(steps.stillLost[1]!.body).toContain(clientId);
  });

  it('answers every probe, up or down, live or ready, on both listeners, with a body no cache may keep', async () => {
    const live = await poll(`${base}/health/live`);
    expect([live.status, JSON.parse(live.body)]).toEqual([200, { status: 'ok' }]);
    for (const answer of [live, ...Object.values(steps).flat()]) expect(answer.cacheControl).toMatch(/\bno-store\b/);
  });

  it('logs nothing above debug while the service has never been ready', () => {
    expect(steps.starting.flatMap((p) => p.lines)).toEqual([]);
  });

  it('logs nothing above debug when the service first becomes ready', () => {
    expect(steps.ready.flatMap((p) => p.lines)).toEqual([]);
  });

  it('warns once when readiness is lost, naming the failing checks and their reasons without the identity’s ids or endpoint', () => {
    const lines = steps.lost.flatMap((p) => p.lines);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', context: 'Health' });
    expect(lines[0]!.message).toMatch(
      /^readiness lost: identity, database down \(identity: no valid token for serviceBus; database: TokenAcquisitionError: No token for <url> \(identity <redacted>\): identity endpoint <redacted> is unreachable/,
    );
    for (const secret of [clientId, objectId, endpoint, '127.0.0.1:41234']) expect(lines[0]!.message).not.toContain(secret);
  });

  it('logs nothing above debug on a repeated poll while readiness stays lost', () => {
    expect(steps.stillLost.flatMap((p) => p.lines)).toEqual([]);
  });

  it('logs one line when readiness comes back', () => {
    expect(steps.back.flatMap((p) => p.lines)).toEqual([
      expect.objectContaining({ level: 'log', context: 'Health', message: expect.stringMatching(/^ready again after \d+\.\d s$/) }),
    ]);
  });

  it('logs no error line at all (Terminus’ own logging is off, messaging module included)', () => {
    expect(logger.lines.filter((line) => line.level === 'error' || line.level === 'fatal')).toEqual([]);
  });

  describe('when start-up takes longer than startupWarningAfterInMs', () => {
    it('warns once with the failing checks and their reasons, then logs when the service is ready at last', async () => {
      identityEndpointLost();
      const moduleRef = await Test.createTestingModule({ imports: [IndicatorsModule, HealthModule.forRoot({ startupWarningAfterInMs: 0 })] }).compile();
      const slow = moduleRef.createNestApplication({ logger });
      await slow.listen(0, '127.0.0.1');
      try {
        const url = `http://127.0.0.1:${(slow.getHttpServer().address() as AddressInfo).port}/health/ready`;
        const overdue = [await poll(url), await poll(url)];
        allUp();
        const ready = await poll(url);
        expect([...overdue, ready].map((p) => p.status)).toEqual([503, 503, 200]);
        const lines = overdue.flatMap((p) => p.lines);
        expect(lines).toEqual([expect.objectContaining({ level: 'warn', context: 'Health', message: expect.stringMatching(/^not ready \d+\.\d s after start: identity, database down \(identity: no valid token/) })]);
        for (const secret of [clientId, objectId, endpoint, '127.0.0.1:41234']) expect(lines[0]!.message).not.toContain(secret);
        expect(ready.lines).toEqual([expect.objectContaining({ level: 'log', message: expect.stringMatching(/^ready \d+\.\d s after start$/) })]);
      } finally {
        await slow.close();
      }
    });
  });

  describe('when an older poll finishes after a newer one', () => {
    it('logs neither the loss nor the recovery its stale result suggests; a newer failure still warns', async () => {
      // The database indicator shares one SELECT 1 between overlapping polls, so its answers come in order; the rule
      // holds for any check, so a database check whose first answer hangs stands in for it here.
      const real = app.get(DatabaseHealthIndicator);
      let hangNext = false;
      let answerOlder!: (result: HealthIndicatorResult<'database'>) => void;
      let olderAsked!: () => void;
      const olderQueried = new Promise<void>((asked) => (olderAsked = asked));
      const database = {
        isHealthy: (key: 'database'): Promise<HealthIndicatorResult<'database'>> => {
          if (!hangNext) return real.isHealthy(key);
          hangNext = false;
          return new Promise((answer) => ((answerOlder = answer), olderAsked()));
        },
      };
      const moduleRef = await Test.createTestingModule({ imports: [IndicatorsModule, HealthModule.forRoot({})] })
        .overrideProvider(DatabaseHealthIndicator)
        .useValue(database)
        .setLogger(logger)
        .compile();
      const checks = moduleRef.get(ReadinessChecks);
      allUp();
      await checks.run();
      const from = logger.lines.length;
      // The older poll's database check hangs; a newer poll finds everything up; then the older one fails.
      hangNext = true;
      const older = checks.run().catch((error: unknown) => error);
      await olderQueried;
      await checks.run();
      answerOlder({ database: { status: 'down', message: 'server closed the connection unexpectedly' } });
      expect(await older).toBeInstanceOf(ServiceUnavailableException);
      const stale = logger.lines.slice(from).filter((line) => line.level !== 'debug');
      identityEndpointLost();
      await checks.run().catch(() => undefined);
      allUp();
      await checks.run();
      expect(stale).toEqual([]);
      expect(logger.lines.slice(from).filter((line) => line.level !== 'debug').map((line) => line.message)).toEqual([
        expect.stringMatching(/^readiness lost: identity, database down/),
        expect.stringMatching(/^ready again after/),
      ]);
      await moduleRef.close();
    });
  });

  describe('when the app shuts down', () => {
    it('logs nothing for the 503 Terminus answers meanwhile, neither a loss nor a recovery', async () => {
      const checks = app.get(ReadinessChecks);
      identityEndpointLost();
      await checks.run().catch(() => undefined);
      closed = true;
      await app.close();
      const from = logger.lines.length;
      const error = await checks.run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceUnavailableException);
      expect((error as ServiceUnavailableException).getResponse()).toMatchObject({ status: 'shutting_down' });
      expect(logger.lines.slice(from).filter((line) => line.level !== 'debug')).toEqual([]);
    });
  });
});
