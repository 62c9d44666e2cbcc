import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { postgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { client, identityPassword, postgresStatus, waitForStatus } from './support.js';

jest.setTimeout(120_000);

describe('Local PostgreSQL: data kept in the home, abandoned transactions ended', () => {
  let home: string;
  let test: TestAzure | undefined;
  const start = async (): Promise<TestAzure> => {
    test = await startTestAzure({ home, dataPlanes: [postgresDataPlane], config: { resources: { postgres: { idleInTransactionTimeoutInMs: 300, maxStatementDurationInMs: 5000 } } } });
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
