import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { LocalAzureHome } from '../../src/home.js';
import { postgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { readStatus } from '../../src/runtime/status.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { frontend } from '../../src/postgres/wire-protocol.js';
import { client, identityPassword, postgresStatus, RawPostgresClient, waitForStatus } from './support.js';

jest.setTimeout(120_000);

describe('Local PostgreSQL: data kept in the home, abandoned transactions ended', () => {
  let home: string;
  let test: TestAzure | undefined;
  const start = async (): Promise<TestAzure> => {
    test = await startTestAzure({ home, dataPlanes: [postgresDataPlane], config: { resources: { postgres: { idleInTransactionTimeoutInMs: 300, maxStatementDurationInMs: 5000, autovacuumIntervalInMs: 200 } } } });
    test.enterHost('vision');
    return test;
  };
  const connected = async (): Promise<pg.Client> => {
    const c = client(identityPassword());
    await c.connect();
    return c;
  };

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'pg-lifecycle-'));
  });
  afterAll(async () => {
    await test?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('closes a connection idle inside its transaction (25P03), rolls it back and serves the others', async () => {
    await start();
    // A home whose PostgreSQL was never used: the engine waits for the first connection.
    expect((await postgresStatus(test!)).engineProcessId).toBeUndefined();
    const setup = await connected();
    await setup.query('CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)');
    await setup.query("INSERT INTO kept VALUES (1, 'committed')");
    await setup.end();

    const idle = await connected();
    const closed = new Promise<Error>((resolve) => idle.on('error', resolve));
    // One message, so the client is never idle inside the transaction before the update is in.
    await idle.query("BEGIN; UPDATE kept SET note = 'abandoned' WHERE id = 1");
    const other = await connected();
    const waiting = other.query<{ note: string }>('SELECT note FROM kept WHERE id = 1');
    expect(await closed).toMatchObject({ code: '25P03', message: 'terminating connection due to idle-in-transaction timeout' });
    expect((await waiting).rows).toEqual([{ note: 'committed' }]);
    await other.end();
  });

  it('closes a connection that holds its transaction open and reads no answer, after the same timeout, and serves the others', async () => {
    const raw = await RawPostgresClient.signIn(await identityPassword()());
    try {
      raw.holdReading(true);
      await raw.write(frontend.query("BEGIN; UPDATE kept SET note = 'unread' WHERE id = 1"));
      void raw.writeMany(200_000, () => frontend.query("SELECT repeat('x', 10000)"));
      await waitForStatus(test!, (status) => status.session.held);
      const other = await connected();
      try {
        expect((await other.query('SELECT note FROM kept WHERE id = 1')).rows).toEqual([{ note: 'committed' }]);
      } finally {
        await other.end();
      }
    } finally {
      raw.destroy();
    }
  });

  it("vacuums and analyzes a table past autovacuum's thresholds by itself, as Azure's server does: dead rows do not pile up", async () => {
    const c = await connected();
    try {
      await c.query('CREATE TABLE churn (id int PRIMARY KEY, note text NOT NULL)');
      await c.query("INSERT INTO churn SELECT i, 'v0' FROM generate_series(1, 200) AS i");
      // Every UPDATE leaves the row's old version dead: 1,000 dead rows, past the threshold (50 + 20 % of the rows).
      for (let round = 1; round <= 5; round++) await c.query(`UPDATE churn SET note = 'v${round}'`);
      type Stats = { n_dead_tup: string; last_vacuum: Date | null; last_analyze: Date | null };
      const stats = async () => (await c.query<Stats>("SELECT n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = 'churn'")).rows[0]!;
      const deadline = Date.now() + 30_000;
      while (!(await stats()).last_vacuum && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await stats()).toEqual({ n_dead_tup: '0', last_vacuum: expect.any(Date), last_analyze: expect.any(Date) });
    } finally {
      await c.end();
    }
  });

  it('closes every connection with 57P02 when the engine process dies, and restarts it with the data', async () => {
    const c = await connected();
    const closed = new Promise<Error>((resolve) => c.on('error', resolve));
    const { engineProcessId } = await postgresStatus(test!);
    expect(engineProcessId).toEqual(expect.any(Number));
    process.kill(engineProcessId!, 'SIGKILL');
    expect(await closed).toMatchObject({ code: '57P02', message: 'terminating connection because of crash of another server process' });
    await waitForStatus(test!, (status) => status.engineProcessId !== undefined && status.engineProcessId !== engineProcessId);
    const again = await connected();
    try {
      expect((await again.query('SELECT note FROM kept WHERE id = 1')).rows).toEqual([{ note: 'committed' }]);
    } finally {
      await again.end();
    }
  });

  it('ends a statement that runs past maxStatementDurationInMs by restarting the engine, so it never wedges the others', async () => {
    const sleeper = await connected();
    sleeper.on('error', () => undefined); // the connection closes after the error below
    await expect(sleeper.query('SELECT pg_sleep(120)')).rejects.toMatchObject({ code: '57P02', message: 'terminating connection because of crash of another server process' });
    const after = await connected();
    try {
      expect((await after.query('SELECT note FROM kept WHERE id = 1')).rows).toEqual([{ note: 'committed' }]);
    } finally {
      await after.end();
    }
  });

  it('reads running after a restart only once the engine of a used PostgreSQL serves', async () => {
    await test!.stop();
    test = undefined;
    await start();
    // No connection yet: what runs now was started with the local Azure, before it said it was ready.
    expect((await readStatus(new LocalAzureHome(home))).state).toBe('running');
    const { engineProcessId } = await postgresStatus(test!);
    expect(engineProcessId).toEqual(expect.any(Number));
    const c = await connected();
    try {
      expect((await c.query('SELECT note FROM kept WHERE id = 1')).rows).toEqual([{ note: 'committed' }]);
      expect((await postgresStatus(test!)).engineProcessId).toBe(engineProcessId);
    } finally {
      await c.end();
    }
  });

  it('keeps the database under the home across a restart of the local Azure', async () => {
    await test!.stop();
    test = undefined;
    await start();
    const c = await connected();
    try {
      expect((await c.query('SELECT note FROM kept WHERE id = 1')).rows).toEqual([{ note: 'committed' }]);
    } finally {
      await c.end();
    }
  });
});
