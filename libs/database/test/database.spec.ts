import { HealthIndicatorService } from '@nestjs/terminus';
import { postgresDataPlane, type PostgresStatus } from '@keyless/local-azure';
import { startTestAzure, TcpGate, type TestAzure } from '@keyless/local-azure/testing';
import { applyMigrations, Database, DatabaseHealthIndicator, isDatabaseUnavailable, type DatabaseModuleOptions, type DatabaseSchema } from '../src/index.js';
import { openTestDatabase, type TestDatabase } from '../src/testing/index.js';

const schema: DatabaseSchema = {
  name: 'database-test',
  migrations: [
    { version: 1, description: 'a table', sql: 'CREATE TABLE database_test (id int PRIMARY KEY)' },
    { version: 2, description: 'a column', sql: ['ALTER TABLE database_test ADD COLUMN note text'] },
  ],
};

/** Polls until `check` holds (no fixed sleeps). */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutInMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The database of a service against the local Azure's PostgreSQL with real tokens (host "recommendation"); the
// service's connections go through a gate the test cuts, as a network or server outage would.
describe(Database.name, () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let gate: TcpGate;
  const opened: TestDatabase[] = [];
  const open = async (options: Parameters<typeof openTestDatabase>[1] = {}) => {
    const database = await openTestDatabase(env, options);
    opened.push(database);
    return database;
  };
  const throughGate = () => open({ pool: { host: '127.0.0.1', port: gate.port } });
  /** The module's two providers over one set of options, as Nest makes them. */
  const start = (database: TestDatabase, overrides: Partial<DatabaseModuleOptions> = {}) => {
    const options: DatabaseModuleOptions = { pool: database.pool, schemas: [schema], retryDelayInMs: 100, maxRetryDelayInMs: 500, healthCheckTimeoutInMs: 2_000, logger: { log: () => undefined, warn: () => undefined, error: () => undefined }, ...overrides };
    const started = new Database(options);
    return { database: started, health: new DatabaseHealthIndicator(new HealthIndicatorService(), started, options) };
  };
  /** The local PostgreSQL as its management API reports it: the queries it served, where the engine runs. */
  const server = () => test.admin().call<PostgresStatus>('GET', '/postgres');

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
    env = test.enterHost('recommendation');
    gate = await TcpGate.open({ host: '127.0.0.1', port: Number(env.PGPORT) });
    // The local engine starts with the first connection: here, not in the first test. On a loaded machine its first
    // start can outlast a connection's 10 s budget; the next connection waits for the same start.
    const first = await open();
    await waitFor('the local engine to start', () => first.pool.query('SELECT 1').then(() => true, () => false), 110_000);
  }, 120_000);
  afterEach(() => gate.restore());
  afterAll(async () => {
    await Promise.all(opened.map((d) => d.close()));
    await gate?.close();
    await test?.stop();
  });

  describe('when two instances start at once', () => {
    it('applies each migration once: the advisory lock makes the second wait and find nothing to do', async () => {
      const [a, b] = await Promise.all([open(), open()]);
      const reports = await Promise.all([applyMigrations(a.pool, [schema]), applyMigrations(b.pool, [schema])]);
      expect(reports.map((r) => r.applied.length).sort()).toEqual([0, 2]);
      const { rows } = await a.pool.query("SELECT version FROM keyless_schema_migrations WHERE schema_name = 'database-test' ORDER BY version");
      expect(rows).toEqual([{ version: 1 }, { version: 2 }]);
    });
  });

  describe('when the database cannot be reached at start', () => {
    it('stays not ready with the reason, retries with backoff, and becomes ready once the database is back', async () => {
      await gate.cut();
      const { database, health } = start(await throughGate());
      const ready = database.whenReady();
      await waitFor('a few failed attempts', () => database.status().attempts >= 3);
      expect(database.status()).toMatchObject({ state: 'unavailable', lastError: expect.stringMatching(/ECONNREFUSED/) });
      expect(await health.isHealthy()).toMatchObject({ database: { status: 'down', message: expect.stringMatching(/not ready after \d+ attempt\(s\): .*ECONNREFUSED/) } });

      await gate.restore();
      await expect(ready).resolves.toBe(true);
      expect(database.status().state).toBe('ready');
      expect(await health.isHealthy()).toMatchObject({ database: { status: 'up', latencyInMs: expect.any(Number) } });
      await database.close();
    }, 30_000);

    it('gives up waiting, without an error, when the service shuts down first', async () => {
      await gate.cut();
      const { database } = start(await throughGate());
      const ready = database.whenReady();
      await waitFor('a failed attempt', () => database.status().attempts >= 1);
      await database.close();
      await expect(ready).resolves.toBe(false);
    });
  });

  describe('when the service shuts down with a connection still checked out', () => {
    it('closes that connection at closeTimeoutInMs and returns, rather than wait for it', async () => {
      const warnings: string[] = [];
      const logger = { log: () => undefined, warn: (line: string) => void warnings.push(line), error: () => undefined };
      const { database } = start(await open(), { closeTimeoutInMs: 300, logger });
      await database.whenReady();
      const held = await database.pool.connect(); // a handler that never gives its connection back
      const ended = new Promise<void>((resolve) => held.once('end', () => resolve()));
      const closed = database.close().then(() => 'closed' as const);
      const stillWaiting = new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 15_000).unref());
      expect(await Promise.race([closed, stillWaiting])).toBe('closed');
      await ended;
      expect(warnings).toEqual([expect.stringContaining('1 connection(s) still in use 300 ms into the shutdown (closeTimeoutInMs); closing them.')]);
      held.release();
    });
  });

  describe('when the database is lost mid-run', () => {
    it('reports it down and unavailable, and works again without a restart once it is back', async () => {
      const db = await throughGate();
      const { database, health } = start(db);
      await database.whenReady();
      await db.pool.query('SELECT 1');

      await gate.cut();
      const failure = await db.pool.query('SELECT 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isDatabaseUnavailable(failure)).toBe(true);
      expect(await health.isHealthy()).toMatchObject({ database: { status: 'down' } });

      await gate.restore();
      await waitFor('queries to work again', () => db.pool.query('SELECT 1').then(() => true, () => false));
      // The last answer (down) serves checks for healthCheckMaxAgeInMs; the first check after it is up.
      await waitFor('readiness up', async () => (await health.isHealthy()).database.status === 'up');
      await database.close();
    }, 30_000);
  });

  describe('when readiness is probed many times at once', () => {
    it('sends the server one SELECT 1 for all of them, and answers each up', async () => {
      const { database, health } = start(await open(), { healthCheckMaxAgeInMs: 60_000 });
      await database.whenReady();
      const before = (await server()).session.queriesServed;

      const answers = await Promise.all(Array.from({ length: 20 }, () => health.isHealthy()));
      expect(answers.map((answer) => answer.database.status)).toEqual(Array(20).fill('up'));
      expect((await server()).session.queriesServed - before).toBe(1);

      // Within healthCheckMaxAgeInMs the answer serves later checks too.
      for (let i = 0; i < 5; i += 1) expect(await health.isHealthy()).toMatchObject({ database: { status: 'up', ageInMs: expect.any(Number) } });
      expect((await server()).session.queriesServed - before).toBe(1);
      await database.close();
    });
  });

  describe('when the engine stops answering mid-run', () => {
    it('answers down every check that comes more than healthCheckMaxAgeInMs later, each within healthCheckTimeoutInMs', async () => {
      const maxAge = 500;
      const timeout = 1_000;
      const { database, health } = start(await open(), { healthCheckMaxAgeInMs: maxAge, healthCheckTimeoutInMs: timeout });
      await database.whenReady();
      expect(await health.isHealthy()).toMatchObject({ database: { status: 'up' } });
      const engine = (await server()).engineProcessId!;

      // The engine's process frozen: no error, no closed connection, only silence (a hung server, a network dropping
      // packets) — the slowest way for a database to go away. A monitor probes every 20 ms meanwhile.
      process.kill(engine, 'SIGSTOP');
      const stoppedAt = performance.now();
      const checks: { at: number; answeredInMs: number; status: string }[] = [];
      try {
        const pending: Promise<void>[] = [];
        while (performance.now() - stoppedAt < maxAge + 2 * timeout) {
          const at = performance.now() - stoppedAt;
          pending.push(health.isHealthy().then((answer) => void checks.push({ at, answeredInMs: performance.now() - stoppedAt - at, status: answer.database.status })));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await Promise.all(pending);
      } finally {
        process.kill(engine, 'SIGCONT');
      }
      const late = checks.filter((check) => check.at > maxAge);
      expect(late.length).toBeGreaterThan(0);
      expect(late.filter((check) => check.status !== 'down')).toEqual([]);
      // The budget, and what a loaded machine adds to a timer's firing.
      expect(Math.max(...late.map((check) => check.answeredInMs))).toBeLessThan(timeout + 500);

      await waitFor('readiness up once the engine answers again', async () => (await health.isHealthy()).database.status === 'up');
      await database.close();
    }, 30_000);
  });
});
