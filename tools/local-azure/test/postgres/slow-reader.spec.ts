import { jest } from '@jest/globals';
import type pg from 'pg';
import { createPostgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { frontend } from '../../src/postgres/wire-protocol.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { client, identityPassword, postgresStatus, RawPostgresClient, readAnswers, settledFirst, waitForStatus } from './support.js';

jest.setTimeout(180_000);

/** Shortened from 60 s: the slow reads below last several times as long. */
const idleInTransactionTimeoutInMs = 5000;
/** The default bound of what the front end holds per connection. */
const maxBufferedBytesPerConnection = 1024 * 1024;
/**
 * The pace of the slow client: about 1 MB/s, read every 10 ms (more at once when a read comes late, on a loaded
 * machine) — a pace, not a wait; slower than the engine makes these rows, so answers pile up for it. The kernel wakes
 * a writer once a third of its send buffer (up to 4 MiB on loopback) has drained, so the server sees this client read
 * every second or two, well within the timeout.
 */
const bytesPerMs = 1000;
const readEveryInMs = 10;
/**
 * Bytes the client reads at full speed at the end: more than the kernel's buffers hold (about 4 MB on loopback), so
 * that its next message is not late because of what the kernel held after the server's last write (PostgreSQL's own
 * idle timer counts from there too).
 */
const fastTailBytes = 5 * 2 ** 20;

/**
 * Reads from `raw` slowly (see {@link bytesPerMs}) until all but {@link fastTailBytes} of `totalBytes` came, then at
 * full speed; `sample` runs every 20 reads. Resolves with the length of the slow part, in ms, or when the connection
 * closes.
 */
async function readSlowly(raw: RawPostgresClient, totalBytes: number, sample: () => void = () => undefined): Promise<number> {
  /** When the first bytes came (the engine takes a while to build a large result): the pace counts from there. */
  let started: number | undefined;
  let received = 0;
  const slowBytes = totalBytes - fastTailBytes;
  /** Whether the client is behind its pace in the slow part (when the server sends slower than that, it stays behind). */
  const behind = (): boolean => received < slowBytes && received < (Date.now() - (started ?? Date.now())) * bytesPerMs;
  let reads = 0;
  let enough: (() => void) | undefined;
  const stop = (): void => {
    const done = enough;
    enough = undefined;
    done?.();
  };
  // After RawPostgresClient's own listener: the chunk is kept for its reader, then the socket pauses.
  const count = (chunk: Buffer): void => {
    started ??= Date.now();
    received += chunk.length;
    if (behind()) return;
    raw.holdReading(true);
    stop();
  };
  raw.socket.on('data', count).on('close', stop);
  try {
    while (received < slowBytes && !raw.socket.destroyed) {
      await new Promise((resolve) => setTimeout(resolve, readEveryInMs));
      if (started !== undefined && !behind()) continue;
      await new Promise<void>((resolve) => {
        enough = resolve;
        raw.holdReading(false);
      });
      if (++reads % 20 === 0) sample();
    }
    return Date.now() - (started ?? Date.now());
  } finally {
    raw.socket.off('data', count).off('close', stop);
    raw.holdReading(false);
  }
}

/** Rows of 10 KB (`n`, then 10,000 x), numbered from 1: what the slow client reads. */
const rows = (count: number): string => `SELECT n, repeat('x', 10000) AS filler FROM generate_series(1, ${count}) AS n`;
const numbers = (count: number): number[] => Array.from({ length: count }, (_, i) => i + 1);

describe('Local PostgreSQL: a transaction holder that reads its answers slowly', () => {
  let test: TestAzure;
  let token: string;
  const raws: RawPostgresClient[] = [];
  const others: pg.Client[] = [];

  const signedIn = async (): Promise<RawPostgresClient> => {
    const raw = await RawPostgresClient.signIn(token);
    raws.push(raw);
    return raw;
  };
  const connected = async (): Promise<pg.Client> => {
    const other = client(token);
    others.push(other);
    await other.connect();
    return other;
  };
  /** Sends one simple query and reads its answer: the first column of its rows. */
  const query = async (raw: RawPostgresClient, sql: string): Promise<number[]> => {
    await raw.write(frontend.query(sql));
    return readAnswers(raw, 1);
  };

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [createPostgresDataPlane({ maxBufferedBytesPerConnection })],
      config: { resources: { postgres: { idleInTransactionTimeoutInMs } } },
    });
    test.enterHost('recommendation');
    token = await identityPassword()();
    const setup = await connected(); // the engine starts with the first connection
    await setup.query('CREATE TABLE reading (id int PRIMARY KEY, note text NOT NULL)');
    await setup.query("INSERT INTO reading VALUES (1, 'before')");
  }, 300_000);
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.destroy();
    await Promise.all(others.splice(0).map((other) => other.end().catch(() => undefined)));
  });
  afterAll(() => test.stop());

  describe('when its client reads one large result slowly, for longer than idleInTransactionTimeoutInMs', () => {
    it('is not closed as idle: it gets every row and commits, and the others are served once it commits', async () => {
      const count = 1500; // about 15 MB, held whole (PGlite answers a statement at once)
      const other = await connected();
      const raw = await signedIn();
      await query(raw, 'BEGIN');
      await query(raw, "UPDATE reading SET note = 'read slowly' WHERE id = 1");
      raw.holdReading(true);
      await raw.write(frontend.query(rows(count)));
      const answered = readAnswers(raw, 1);
      // Another connection's statement waits for the transaction, as it would for the row's lock.
      const seen = other.query<{ note: string }>('SELECT note FROM reading WHERE id = 1');
      const [slowFor, answer] = await Promise.all([readSlowly(raw, count * 10_000), answered]);
      expect(slowFor).toBeGreaterThan(1.5 * idleInTransactionTimeoutInMs);
      expect(answer).toEqual(numbers(count));
      const committed = query(raw, 'COMMIT');
      expect(await settledFirst(seen, committed)).toBe(false);
      expect((await seen).rows).toEqual([{ note: 'read slowly' }]);
    });
  });

  describe('when its client reads a cursor slowly, FETCH after FETCH, for longer than idleInTransactionTimeoutInMs', () => {
    it('is not closed as idle, and the front end never holds more than its bound for it', async () => {
      const fetches = 300; // 5 rows (about 50 KB) each: 15 MB in all
      const raw = await signedIn();
      raw.holdReading(true);
      await raw.write(
        Buffer.concat([
          frontend.query('BEGIN'),
          frontend.query(`DECLARE slow NO SCROLL CURSOR FOR ${rows(fetches * 5)}`),
          ...Array.from({ length: fetches }, () => frontend.query('FETCH 5 FROM slow')),
          frontend.query('COMMIT'),
        ]),
      );
      const answered = readAnswers(raw, fetches + 3);
      // Its answers pile up first, whatever pace the engine keeps on a loaded machine: the front end holds it back.
      const statuses = [await waitForStatus(test, (status) => status.buffers.heldBackConnections === 1)];
      let sampling: Promise<unknown> = Promise.resolve();
      const sample = (): void => {
        // One request at a time, each after the last.
        sampling = sampling.then(() => postgresStatus(test).then((status) => statuses.push(status)));
      };
      const [slowFor, answer] = await Promise.all([readSlowly(raw, fetches * 50_000, sample), answered]);
      expect(slowFor).toBeGreaterThan(1.5 * idleInTransactionTimeoutInMs);
      expect(answer).toEqual(numbers(fetches * 5));
      // Its unread answers up to the bound, overshot by one answer (50 KB), and one read from its socket (16 KiB).
      await sampling;
      const largest = Math.max(...statuses.map((status) => status.buffers.largestConnectionBytes));
      expect(largest).toBeGreaterThan(maxBufferedBytesPerConnection / 2);
      expect(largest).toBeLessThanOrEqual(maxBufferedBytesPerConnection + 64 * 1024);
    });
  });

  describe('when its client reads one large result slowly outside a transaction', () => {
    it('does not hold the others up: the session is free while its answer is read', async () => {
      const count = 1000;
      const raw = await signedIn();
      raw.holdReading(true);
      await raw.write(frontend.query(rows(count)));
      const answered = readAnswers(raw, 1);
      const other = await connected();
      let served = 0;
      const reading = readSlowly(raw, count * 10_000);
      for (; served < 20; served++) expect((await other.query<{ n: number }>('SELECT $1::int AS n', [served])).rows).toEqual([{ n: served }]);
      expect(await settledFirst(answered, Promise.resolve())).toBe(false);
      await reading;
      expect(await answered).toEqual(numbers(count));
    });
  });
});
