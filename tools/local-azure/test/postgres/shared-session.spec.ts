import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { postgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { cancelRequest, client, identityPassword, postgresStatus, refusal, settledFirst, waitForStatus } from './support.js';

jest.setTimeout(60_000);

/** Runs `work` inside BEGIN … COMMIT on a pooled connection. */
async function inTransaction(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await work(c);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

const holdTransaction = fileURLToPath(new URL('../fixtures/pg-hold-transaction.mjs', import.meta.url));
const maxConnections = 40;

describe('Local PostgreSQL: one engine session shared by every connection', () => {
  let test: TestAzure;
  let password: () => Promise<string>;
  const open: pg.Client[] = [];

  /** A signed-in client, ended after each test. */
  const connected = async (config: pg.ClientConfig = {}): Promise<pg.Client> => {
    const c = client(password, config);
    c.on('error', () => undefined); // a connection the server closes reports it on the next query
    open.push(c);
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane], config: { resources: { postgres: { maxConnections } } } });
    test.enterHost('recommendation');
    password = identityPassword();
    const c = await connected(); // the engine starts in the background: wait for it once
    await c.query('CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL)');
    await c.query('CREATE TABLE events (id serial PRIMARY KEY, writer text NOT NULL)');
  }, 300_000);
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  afterAll(() => test.stop());

  const resetCounter = async (id: number): Promise<void> => {
    const c = await connected();
    await c.query('INSERT INTO counters VALUES ($1, 0) ON CONFLICT (id) DO UPDATE SET value = 0', [id]);
  };
  const counter = async (id: number): Promise<number> => {
    const c = await connected();
    return (await c.query<{ value: number }>('SELECT value FROM counters WHERE id = $1', [id])).rows[0]!.value;
  };

  describe('when two writers race on one row', () => {
    it("runs the second writer's transaction only after the first commits, so no update is lost", async () => {
      await resetCounter(1);
      const [first, second] = [await connected(), await connected()];
      await first.query('BEGIN');
      const read = await first.query<{ value: number }>('SELECT value FROM counters WHERE id = 1');
      // The second writer starts while the first holds the session: its BEGIN waits.
      const secondDone = (async () => {
        await second.query('BEGIN');
        const seen = (await second.query<{ value: number }>('SELECT value FROM counters WHERE id = 1')).rows[0]!.value;
        await second.query('UPDATE counters SET value = $1 WHERE id = 1', [seen + 1]);
        await second.query('COMMIT');
        return seen;
      })();
      const write = first.query('UPDATE counters SET value = $1 WHERE id = 1', [read.rows[0]!.value + 1]);
      expect(await settledFirst(secondDone, write)).toBe(false);
      await first.query('COMMIT');
      expect(await secondDone).toBe(1); // it read the first writer's committed value
      expect(await counter(1)).toBe(2);
    });

    it('loses no increment when many pooled writers race read-modify-write transactions', async () => {
      await resetCounter(2);
      const pool = new pg.Pool({ password, max: 8 });
      try {
        await Promise.all(
          Array.from({ length: 64 }, () =>
            inTransaction(pool, async (c) => {
              const { rows } = await c.query<{ value: number }>('SELECT value FROM counters WHERE id = 2');
              await c.query('UPDATE counters SET value = $1 WHERE id = 2', [rows[0]!.value + 1]);
            }),
          ),
        );
      } finally {
        await pool.end();
      }
      expect(await counter(2)).toBe(64);
    });
  });

  describe('when the session passes from one connection to another', () => {
    it("never shows one connection's transaction-local or session settings, temporary tables or uncommitted rows to another", async () => {
      const [a, b] = [await connected(), await connected()];
      await a.query('BEGIN');
      await a.query("SET LOCAL keyless.probe = 'a-local'");
      await a.query("INSERT INTO events (writer) VALUES ('uncommitted')");
      const bSees = b.query<{ probe: string; uncommitted: number }>(
        "SELECT coalesce(current_setting('keyless.probe', true), '') AS probe, (SELECT count(*)::int FROM events WHERE writer = 'uncommitted') AS uncommitted",
      );
      await a.query('ROLLBACK');
      expect((await bSees).rows[0]).toEqual({ probe: '', uncommitted: 0 });

      await a.query("SET keyless.probe = 'a-session'");
      await a.query('CREATE TEMPORARY TABLE a_scratch (id int)');
      const { rows } = await b.query("SELECT coalesce(current_setting('keyless.probe', true), '') AS probe, to_regclass('a_scratch')::text AS scratch");
      expect(rows[0]).toEqual({ probe: '', scratch: null });
    });

    it('keeps a connection\'s role and start-up settings across hand-overs', async () => {
      const [a, b] = [await connected({ application_name: 'writer-a' }), await connected({ application_name: 'writer-b' })];
      for (let i = 0; i < 3; i++) {
        expect((await a.query('SELECT current_setting($1) AS name, current_user AS role', ['application_name'])).rows[0]).toEqual({ name: 'writer-a', role: 'id-keyless' });
        expect((await b.query('SELECT current_setting($1) AS name', ['application_name'])).rows[0]).toEqual({ name: 'writer-b' });
      }
    });

    it('re-makes named prepared statements, so a statement prepared before a hand-over still runs after it', async () => {
      const [a, b] = [await connected(), await connected()];
      const named = { name: 'counter-by-id', text: 'SELECT value FROM counters WHERE id = $1' };
      await resetCounter(3);
      expect((await a.query({ ...named, values: [3] })).rows).toEqual([{ value: 0 }]);
      await b.query('DEALLOCATE ALL'); // another connection runs between: the session is reset
      expect((await a.query({ ...named, values: [3] })).rows).toEqual([{ value: 0 }]);
    });

    it('serves transaction-level advisory locks (how migrations serialize), and drops session-level ones at a hand-over', async () => {
      const [a, b] = [await connected(), await connected()];
      const advisoryLocks = async (c: pg.Client): Promise<number> => (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")).rows[0]!.n;
      await a.query('BEGIN');
      await a.query('SELECT pg_advisory_xact_lock(4242)');
      expect(await advisoryLocks(a)).toBe(1);
      await a.query('COMMIT');
      await a.query('SELECT pg_advisory_lock(4343)');
      expect(await advisoryLocks(a)).toBe(1);
      // b gets the session next: DISCARD ALL has released a's session-level lock, which a must not rely on.
      expect(await advisoryLocks(b)).toBe(0);
    });

    it('serves the extended query protocol and pgvector: parameters, an HNSW cosine index, ORDER BY <=>', async () => {
      const c = await connected();
      await c.query('CREATE EXTENSION IF NOT EXISTS vector');
      await c.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, embedding vector(3) NOT NULL)');
      await c.query('CREATE INDEX items_embedding ON items USING hnsw (embedding vector_cosine_ops)');
      const rows = [
        [1, 'red shoe', '[1,0,0]'],
        [2, 'blue shoe', '[0.9,0.1,0]'],
        [3, 'green kettle', '[0,0,1]'],
      ];
      for (const row of rows) await c.query('INSERT INTO items VALUES ($1, $2, $3)', row);
      const { rows: nearest } = await c.query<{ name: string; distance: number }>('SELECT name, embedding <=> $1 AS distance FROM items ORDER BY embedding <=> $1 LIMIT $2', ['[1,0,0]', 2]);
      expect(nearest.map((r) => r.name)).toEqual(['red shoe', 'blue shoe']);
      expect(nearest[0]!.distance).toBeCloseTo(0, 6);
      const plan = await c.query<{ 'QUERY PLAN': string }>("SET LOCAL enable_seqscan = off; EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 1");
      expect(JSON.stringify(plan)).toContain('items_embedding');
    });
  });

  describe('when the operator reads the server status', () => {
    it('counts each query a connection sent (a simple query, an extended one up to its Sync), not the hand-overs between them', async () => {
      const [a, b] = [await connected(), await connected()];
      const before = (await postgresStatus(test)).session.queriesServed;
      await a.query('SELECT 1');
      await b.query('SELECT $1::int AS one', [1]); // Parse, Bind, Describe, Execute, Sync; the session passes to b first
      await a.query('SELECT 2'); // and back to a
      expect((await postgresStatus(test)).session.queriesServed - before).toBe(3);
    });
  });

  describe('when a client dies mid-transaction', () => {
    it('rolls its transaction back and serves the others, whose statements were waiting for it', async () => {
      await resetCounter(4);
      const child = spawn(process.execPath, [holdTransaction, 'UPDATE counters SET value = 99 WHERE id = 4'], {
        env: { PATH: process.env.PATH, ...test.azure.hostEnv('recommendation') },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('holding') && resolve());
        child.once('exit', (code) => reject(new Error(`the holding client exited early (${code})`)));
      });
      const other = await connected();
      const waiting = other.query<{ value: number }>('SELECT value FROM counters WHERE id = 4');
      child.kill('SIGKILL');
      await exited;
      expect((await waiting).rows[0]!.value).toBe(0);
    });

    it('rolls back a client that ends its connection (Terminate) inside a transaction', async () => {
      await resetCounter(5);
      const quitter = await connected();
      await quitter.query('BEGIN');
      await quitter.query('UPDATE counters SET value = 7 WHERE id = 5');
      await quitter.end();
      expect(await counter(5)).toBe(0);
    });
  });

  describe('when a client cancels a statement', () => {
    it("answers a statement still waiting for the session with PostgreSQL's cancel error; the connection goes on", async () => {
      const [holder, waiter] = [await connected(), await connected()];
      await holder.query('BEGIN');
      const waiting = waiter.query('SELECT 1 AS one');
      await waitForStatus(test, (status) => status.session.waiting === 1);
      await cancelRequest(waiter);
      await expect(waiting).rejects.toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
      await holder.query('COMMIT');
      expect((await waiter.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
  });

  describe('when a statement uses what PGlite cannot serve', () => {
    it('refuses COPY FROM STDIN with a clear error, and the engine goes on', async () => {
      const c = await connected();
      await expect(c.query('COPY counters FROM STDIN')).rejects.toMatchObject({ code: '0A000', message: 'COPY FROM STDIN is not supported by the local PostgreSQL (PGlite)' });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  describe('when a client sends a message type PostgreSQL does not know', () => {
    it('closes that connection with a protocol violation and never passes the message to the engine', async () => {
      const rogue = await connected();
      const closed = new Promise<Error>((resolve) => rogue.on('error', resolve));
      // 'z' with an empty body: PGlite's engine would never return from it.
      (rogue as unknown as { connection: { stream: { write(bytes: Buffer): void } } }).connection.stream.write(Buffer.from([0x7a, 0, 0, 0, 4]));
      expect(await closed).toMatchObject({ severity: 'FATAL', code: '08P01', message: 'invalid frontend message type 122' });
      expect((await (await connected()).query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  describe('when many connections from several pools work at once', () => {
    it('serves them all, then refuses one connection over the limit with "too many clients"', async () => {
      const pools = Array.from({ length: 3 }, () => new pg.Pool({ password, max: 10, idleTimeoutMillis: 0 }));
      try {
        await Promise.all(
          pools.flatMap((pool, p) => Array.from({ length: 40 }, (_, i) => inTransaction(pool, (c) => c.query('INSERT INTO events (writer) VALUES ($1)', [`pool-${p}-${i}`])))),
        );
        expect(pools.map((pool) => pool.totalCount)).toEqual([10, 10, 10]);
        const { rows } = await (await connected()).query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE writer LIKE 'pool-%'");
        expect(rows[0]!.n).toBe(120);
        // 30 pooled + those of this test: fill up to the limit once the server counts exactly those, then one more.
        await waitForStatus(test, (status) => status.connections === 30 + open.length);
        while (open.length + 30 < maxConnections) await connected();
        expect(await refusal(password)).toMatchObject({ severity: 'FATAL', code: '53300', message: 'sorry, too many clients already' });
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
      }
    });
  });
});
