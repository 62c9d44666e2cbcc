import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { fetchImage, ImageUrlError, type HostResolver, type ImageFetchOptions } from './image-fetcher.js';

// A real image server on loopback; name resolution is given per test (no DNS server runs here).
describe(fetchImage.name, () => {
  let server: Server;
  let port: number;
  const served: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      served.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('image bytes'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  beforeEach(() => (served.length = 0));

  const options = (extra: Partial<ImageFetchOptions> = {}): ImageFetchOptions => ({ timeoutInMs: 3000, maxBytes: 1024, maxRedirects: 2, ...extra });
  /** A resolver answering `answers[i]` to its i-th call (the last one after that), counting calls. */
  const resolver = (...answers: LookupAddress[][]): HostResolver & { calls: number } => {
    const resolve = Object.assign(async (): Promise<LookupAddress[]> => answers[Math.min(resolve.calls++, answers.length - 1)]!, { calls: 0 });
    return resolve;
  };
  const failure = (promise: Promise<unknown>): Promise<ImageUrlError> => promise.then(() => Promise.reject(new Error('expected a refusal')), (error: ImageUrlError) => error);

  describe('when a host name resolves', () => {
    it('resolves it once and connects to the address it checked, whatever a second answer would be', async () => {
      // Allow-listed so that loopback may be fetched; a rebinding resolver would answer an unroutable address next.
      const resolve = resolver([{ address: '127.0.0.1', family: 4 }], [{ address: '10.255.255.1', family: 4 }]);
      const bytes = await fetchImage(`http://images.test:${port}/a.png`, options({ resolve, allowedHosts: [`images.test:${port}`] }));
      expect(bytes.toString()).toBe('image bytes');
      expect(resolve.calls).toBe(1);
    });

    it('refuses it when any of its addresses is not on the internet, before connecting', async () => {
      const resolve = resolver([{ address: '20.53.203.50', family: 4 }, { address: '::ffff:127.0.0.1', family: 6 }]);
      const error = await failure(fetchImage(`http://mixed.test:${port}/a.png`, options({ resolve })));
      expect(error).toMatchObject({ reason: 'blocked-address', addressClass: 'loopback' });
      expect(error.message).toContain('mixed.test resolves to it');
      expect(served).toEqual([]);
    });

    it('refuses a name that resolves to nothing as unreachable', async () => {
      expect(await failure(fetchImage('http://nothing.test/a.png', options({ resolve: resolver([]) })))).toMatchObject({ reason: 'unreachable' });
    });
  });

  describe('when the allow-list names a host', () => {
    it('matches host and port exactly, in the URL parser’s spelling', async () => {
      expect((await fetchImage(`http://127.0.0.1:${port}/a.png`, options({ allowedHosts: [`127.0.0.1:${port}`] }))).length).toBe(11);
      expect(await failure(fetchImage(`http://127.0.0.1:${port}/a.png`, options({ allowedHosts: [`127.0.0.1:${port + 1}`] })))).toMatchObject({ reason: 'blocked-address' });
      expect((await fetchImage(`http://LOCALHOST:${port}/a.png`, options({ allowedHosts: [`localhost:${port}`], resolve: resolver([{ address: '127.0.0.1', family: 4 }]) }))).length).toBe(11);
    });
  });
});
