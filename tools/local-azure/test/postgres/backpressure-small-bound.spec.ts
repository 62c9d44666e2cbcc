import { jest } from '@jest/globals';
import { createPostgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { identityPassword, RawPostgresClient, readAnswers, simpleQuery, waitForStatus } from './support.js';

jest.setTimeout(180_000);

// Node emits 'drain' only after a write the socket refused (its buffer reached 16 KiB): a bound below that, waiting
// for 'drain' after any write past it, stopped reading from the client for good.
describe('Local PostgreSQL: backpressure with a bound below the socket buffer (16 KiB)', () => {
  let test: TestAzure;
  let raw: RawPostgresClient | undefined;

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [createPostgresDataPlane({ maxBufferedBytesPerConnection: 1024 })] });
    test.enterHost('recommendation');
  }, 300_000);
  afterAll(async () => {
    raw?.destroy();
    await test.stop();
  });

  it('holds back a client that does not read, then gives it every answer once it reads', async () => {
    raw = await RawPostgresClient.signIn(await identityPassword()());
    raw.holdReading(true);
    const count = 2000; // 20 MB of answers, 10 KB each: more than the kernel's socket buffers hold
    const written = raw.writeMany(count, simpleQuery);
    await waitForStatus(test, (status) => status.buffers?.heldBackConnections === 1 && !status.session.held && status.session.waiting === 0);
    raw.holdReading(false);
    expect(await readAnswers(raw, count)).toEqual(Array.from({ length: count }, (_, n) => n));
    await written;
    // The file's 180 s: the engine's first start is in this test, and at load 25 it and the 2000 answers took over 60 s.
  });
});
