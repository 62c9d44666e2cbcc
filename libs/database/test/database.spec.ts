import { HealthIndicatorService } from '@nestjs/terminus';
import { postgresDataPlane } from '@keyless/local-azure';
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
  const start = (database: TestDatabase, overrides: Partial<DatabaseModuleOptions> = {}) => {
    const started = new Database({ pool: database.pool, schemas: [schema], retryDelayInMs: 100, maxRetryDelayInMs: 500, logger: { log: () => undefined, warn: () => undefined, error: () => undefined }, ...overrides });
    return { database: started, health: new DatabaseHealthIndicator(new HealthIndicatorService(), started, { pool: database.pool, schemas: [schema], healthCheckTimeoutInMs: 2_000 }) };
  };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
    env = test.enterHost('recommendation');
    gate = await TcpGate.open({ host: '127.0.0.1', port: Number(env.PGPORT) });
    // The local engine starts with the first connection: here, not in the first test.
    await (await open()).pool.query('SELECT 1');
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
      expect(await health.isHealthy()).toMatchObject({ database: { status: 'up' } });
      await database.close();
    }, 30_000);
  });
});
