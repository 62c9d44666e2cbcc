import { jest } from '@jest/globals';
import { createPostgresDataPlane, type PostgresStatus } from '../../src/postgres/postgres-data-plane.js';
import { frontend } from '../../src/postgres/wire-protocol.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { cancelRequest, client, identityPassword, postgresStatus, RawPostgresClient, readAnswers, simpleQuery, waitForStatus } from './support.js';

jest.setTimeout(180_000);

/** The bound under test: small, so that a few thousand answers overflow it many times. */
const maxBufferedBytesPerConnection = 256 * 1024;
/**
 * What one connection may hold at most: its limit of messages waiting for the engine and of unread answers, each
 * overshot by one message or answer (10 KB here), and one read from the socket (a TLS record, 16 KiB).
 */
const connectionBound = 2 * maxBufferedBytesPerConnection + 64 * 1024;
/** Growth of this process's buffers (the local Azure runs in it) allowed while a client is held: generous. */
const memoryMargin = 32 * 1024 * 1024;

/** A typed protocol message. */
function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstring = (value: string): Buffer => Buffer.from(`${value}\0`, 'utf8');
const int16 = (...values: number[]): Buffer => Buffer.concat(values.map((v) => Buffer.from([(v >> 8) & 0xff, v & 0xff])));
const int32 = (value: number): Buffer => {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value);
  return out;
};

/** Parse of the unnamed statement the extended queries run. */
const parse = message('P', cstring(''), cstring("SELECT $1::int AS n, repeat('x', 10000) AS filler"), int16(0));
/** Bind of the unnamed statement with `n` (text), and Execute. */
const bindExecute = (n: number): Buffer =>
  Buffer.concat([message('B', cstring(''), cstring(''), int16(0, 1), int32(String(n).length), Buffer.from(String(n)), int16(0)), message('E', cstring(''), int32(0))]);
/** The same query with the extended protocol, as node-postgres sends a parameterized one: Parse, Bind, Execute, Sync. */
const extendedQuery = (n: number): Buffer => Buffer.concat([parse, bindExecute(n), frontend.sync()]);


/** Whether the front end holds a connection back because its client does not read: paused, none of its work running or in line. */
const heldBack = (status: PostgresStatus): boolean => status.buffers?.heldBackConnections === 1 && !status.session.held && status.session.waiting === 0;

describe('Local PostgreSQL: backpressure on a client that pipelines', () => {
  let test: TestAzure;
  let token: string;
  const raws: RawPostgresClient[] = [];

  const signedIn = async (): Promise<RawPostgresClient> => {
    const raw = await RawPostgresClient.signIn(token);
    raws.push(raw);
    return raw;
  };

  /**
   * Polls the server's status until `condition` holds, failing as soon as this process (the local Azure's) has
   * buffered more than the margin since `baseline`: what an unbounded front end does with a client that does not read.
   */
  const waitHolding = async (condition: (status: PostgresStatus) => boolean, baseline: number): Promise<PostgresStatus> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = await postgresStatus(test);
      const grown = process.memoryUsage().arrayBuffers - baseline;
      if (grown > memoryMargin) throw new Error(`the local Azure buffered ${Math.round(grown / 2 ** 20)} MiB for a client that does not read (served ${status.session.queriesServed} queries)`);
      if (condition(status)) return status;
      if (Date.now() > deadline) throw new Error(`the server did not hold the client back: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [createPostgresDataPlane({ maxBufferedBytesPerConnection })] });
    test.enterHost('recommendation');
    token = await identityPassword()();
    await (await signedIn()).write(frontend.query('SELECT 1')); // the engine starts with the first connection
    expect(await readAnswers(raws[0]!, 1)).toEqual([1]);
  }, 300_000);
  afterEach(() => {
    for (const raw of raws.splice(0)) raw.destroy();
  });
  afterAll(() => test.stop());

  describe('when a client pipelines 200,000 queries and reads no answer', () => {
    it('stops reading from it and holds a bounded number of bytes for it', async () => {
      const raw = await signedIn();
      raw.holdReading(true);
      const baseline = process.memoryUsage().arrayBuffers;
      void raw.writeMany(200_000, simpleQuery);
      const status = await waitHolding(heldBack, baseline);
      expect(status.buffers.largestConnectionBytes).toBeLessThanOrEqual(connectionBound);
      expect(status.buffers.largestConnectionBytes).toBeGreaterThan(0);
    });

    it("serves another connection's queries meanwhile, and keeps holding the first", async () => {
      const raw = await signedIn();
      raw.holdReading(true);
      const baseline = process.memoryUsage().arrayBuffers;
      void raw.writeMany(200_000, simpleQuery);
      await waitHolding(heldBack, baseline);
      const other = client(token);
      await other.connect();
      try {
        for (let n = 0; n < 20; n++) expect((await other.query<{ n: number }>('SELECT $1::int AS n', [n])).rows).toEqual([{ n }]);
      } finally {
        await other.end();
      }
      const status = await waitHolding(heldBack, baseline);
      expect(status.buffers.largestConnectionBytes).toBeLessThanOrEqual(connectionBound);
    });
  });

  describe('when a client pipelines many queries and reads the answers only later', () => {
    it('holds it back while it does not read, then gives it every answer in order', async () => {
      const raw = await signedIn();
      raw.holdReading(true);
      const count = 4000; // 40 MB of answers: the bound is reached, and released, many times
      const baseline = process.memoryUsage().arrayBuffers;
      const written = raw.writeMany(count, (n) => (n % 2 ? extendedQuery(n) : simpleQuery(n)));
      await waitHolding(heldBack, baseline);
      raw.holdReading(false);
      expect(await readAnswers(raw, count)).toEqual(Array.from({ length: count }, (_, n) => n));
      await written;
    });
  });

  describe('when a client streams Bind/Execute pairs without a Sync', () => {
    it('runs them as they come and holds it back on unread answers, then answers all of them at the Sync', async () => {
      const raw = await signedIn();
      raw.holdReading(true);
      const count = 2000; // 20 MB of answers before the Sync
      const baseline = process.memoryUsage().arrayBuffers;
      await raw.write(parse);
      const written = raw.writeMany(count, bindExecute).then(() => raw.write(frontend.sync()));
      await waitHolding((status) => status.buffers?.heldBackConnections === 1 && status.session.held && status.buffers.largestConnectionBytes > maxBufferedBytesPerConnection, baseline);
      raw.holdReading(false);
      expect(await readAnswers(raw, 1)).toEqual(Array.from({ length: count }, (_, n) => n));
      await written;
    });
  });

  describe('when a CancelRequest comes for a connection whose Bind/Execute batch waits in line, sent in parts', () => {
    it('answers its Sync with one error and one ReadyForQuery, and its next query with its own answer', async () => {
      const holder = client(token);
      await holder.connect();
      try {
        await holder.query('BEGIN'); // holds the session: the batch waits in line
        const raw = await signedIn();
        // Parse, Bind, Execute, Bind | Execute, Sync: the second Execute starts a second part.
        await raw.write(Buffer.concat([parse, bindExecute(1), bindExecute(2), frontend.sync()]));
        await waitForStatus(test, (status) => status.session.waiting === 1);
        await cancelRequest(raw);
        await holder.query('COMMIT');
        const error = await raw.next();
        expect(String.fromCharCode(error[0]!)).toBe('E');
        expect(error.toString('utf8')).toContain('57014');
        expect(String.fromCharCode((await raw.next())[0]!)).toBe('Z');
        await raw.write(frontend.query('SELECT 42 AS n'));
        expect(await readAnswers(raw, 1)).toEqual([42]);
      } finally {
        await holder.end();
      }
    });
  });
});
