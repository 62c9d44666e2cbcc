import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenerOptions, Router } from './http-kit.js';

describe(Router.name, () => {
  describe('when a handler fails unexpectedly', () => {
    const logged: string[] = [];
    let server: Server;
    let origin: string;

    beforeAll(async () => {
      const router = new Router((line) => logged.push(line)).on('GET', /^\/fails$/, () => {
        throw new Error("ENOENT: no such file or directory, open '/home/someone/.local-azure/data/signing-keys.json'");
      });
      server = createServer(router.listener());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it('answers a generic 500 and writes the detail to the log only', async () => {
      const response = await fetch(`${origin}/fails`);
      const text = await response.text();
      expect(response.status).toBe(500);
      expect(JSON.parse(text)).toEqual({ error: { code: 'InternalServerError', message: 'The local Azure failed to process the request; its console has the details.' } });
      expect(text).not.toMatch(/ENOENT|signing-keys|\/home\//);
      expect(logged).toEqual([expect.stringMatching(/^GET \/fails: Error: ENOENT: .*signing-keys\.json'\n\s+at /)]);
    });
  });

  describe('with fallbacks', () => {
    const logged: string[] = [];
    let server: Server;
    let origin: string;

    beforeAll(async () => {
      const page = (status: number, text: string) => (_req: unknown, res: ServerResponse): void => {
        res.writeHead(status, { 'content-type': 'text/html' }).end(text);
      };
      const router = new Router((line) => logged.push(line), undefined, { methodNotAllowed: page(405, '<p>not here</p>'), failed: page(500, '<p>failed</p>') }).on('GET', /^\/fails$/, () => {
        throw new Error('secret detail');
      });
      server = createServer(router.listener());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    it("answers another method on a known path and a failure with the router's own answers, the detail logged only", async () => {
      const wrongMethod = await fetch(`${origin}/fails`, { method: 'POST' });
      expect([wrongMethod.status, await wrongMethod.text()]).toEqual([405, '<p>not here</p>']);
      const failed = await fetch(`${origin}/fails`);
      expect([failed.status, await failed.text()]).toEqual([500, '<p>failed</p>']);
      expect(logged).toEqual([expect.stringContaining('secret detail')]);
    });
  });
});

describe(listenerOptions.name, () => {
  const limits = { httpHeadersTimeoutInMs: 100_000, httpRequestTimeoutInMs: 200_000, tlsHandshakeTimeoutInMs: 10_000 };

  it("makes a server Node accepts when a listener's own request timeout is shorter than the headers timeout", () => {
    // Vision keeps 60 s for its requests: a headers timeout of 100 s made Node refuse to create its server at start.
    const options = listenerOptions(limits, { requestTimeoutInMs: 60_000 });
    expect(() => createServer(options).close()).not.toThrow();
    expect(options).toMatchObject({ headersTimeout: 100_000, requestTimeout: 100_000 });
  });
});
