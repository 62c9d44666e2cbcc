import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectionOf, waitFor } from '@keyless/testing';
import { Progress } from '../progress.js';
import { loadCatalog, type GatewayCaller } from './catalog-loader.js';
import { demoCatalog } from './demo-catalog.js';

type Answer = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * A gateway stand-in on a real socket: it answers the scripted answers first, in order, then as a gateway whose
 * services are up (GET: 200 with the stored product's indexing state, or 404; PUT: stores the product, 202).
 */
class ScriptedGateway {
  /** Each request once it has ended: answered with a status, or `closed` by the client before an answer. */
  readonly log: { request: string; status: number | 'closed'; at: number }[] = [];
  /** Requests received so far, answered or not. */
  received = 0;
  private readonly stored = new Set<string>();
  private server!: Server;

  constructor(private readonly script: Answer[]) {}

  async start(): Promise<GatewayCaller> {
    this.server = createServer((request, response) => {
      this.received++;
      const name = `${request.method} ${decodeURIComponent(request.url!)}`;
      const scripted = this.script.shift();
      response.on('close', () => this.log.push({ request: name, status: response.writableFinished ? response.statusCode : 'closed', at: performance.now() }));
      request.resume();
      request.on('end', () => {
        if (scripted) return scripted(request, response);
        const id = decodeURIComponent(request.url!.split('/').pop()!);
        if (request.method === 'PUT') {
          this.stored.add(id);
          response.writeHead(202).end();
        } else if (this.stored.has(id)) {
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, indexing: { state: 'indexed' } }));
        } else {
          response.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return { fetch: (path, init) => fetch(`${url}${path}`, init) };
  }

  /** `request status` of each request that has ended, in order. */
  answers(): string[] {
    return this.log.map(({ request, status }) => `${request} ${status}`);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const problem =
  (status: number, detail: string, headers: Record<string, string> = {}): Answer =>
  (_request, response) =>
    response.writeHead(status, { 'content-type': 'application/problem+json', ...headers }).end(JSON.stringify({ status, detail }));
const timedOut = problem(504, 'The recommendation service did not answer within 10000 ms.');
const unavailable = (headers: Record<string, string> = {}): Answer => problem(503, 'A service behind the gateway is unavailable right now.', headers);
const reset: Answer = (request) => request.socket.destroy();
/** Never answers: the request stays in flight until the client gives up on it. */
const hold: Answer = () => undefined;

describe(loadCatalog.name, () => {
  const catalog = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images' }).slice(0, 3);
  const [first] = catalog;
  const path = `/v1/products/${first!.product.id}`;
  let gateway: ScriptedGateway | undefined;
  let output: string[];
  const printed = (): string => output.join('');
  const progress = (): Progress => new Progress({ isTTY: false, write: (text: string) => output.push(text) > 0 } as unknown as NodeJS.WriteStream);
  const fast = { firstRetryDelayInMs: 20, maxRetryDelayInMs: 100 };

  beforeEach(() => {
    output = [];
  });
  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });

  describe('when the gateway answers 504 while its services catch up', () => {
    it('tries the lookup and the upsert again, says what it retries and why, and loads the product', async () => {
      gateway = new ScriptedGateway([timedOut, timedOut]);
      await loadCatalog(await gateway.start(), [first!], progress(), fast);
      expect(gateway.answers()).toEqual([`GET ${path} 504`, `GET ${path} 504`, `GET ${path} 404`, `PUT ${path} 202`, `GET ${path} 200`]);
      expect(printed()).toContain(
        `The gateway answered 504 (The recommendation service did not answer within 10000 ms.) to GET ${path} (its services are still catching up): trying again in`,
      );
      expect(printed()).toMatch(/\(try 2 of at most 20; the load gives up after \d+ s more of such answers\)/);
      expect(printed()).toContain('✓ Indexing');
    });
  });

  describe('when the gateway answers 503 with Retry-After', () => {
    it('waits as long as Retry-After says before trying again', async () => {
      gateway = new ScriptedGateway([unavailable({ 'retry-after': '1' })]);
      await loadCatalog(await gateway.start(), [first!], progress(), fast);
      const [refused, next] = gateway.log;
      expect(refused!.status).toBe(503);
      expect(next!.at - refused!.at).toBeGreaterThanOrEqual(950);
      expect(printed()).toContain('trying again in 1.0 s');
    });
  });

  describe('when the connection is reset (a service restarting)', () => {
    it('tries again and loads the product', async () => {
      gateway = new ScriptedGateway([reset]);
      await loadCatalog(await gateway.start(), [first!], progress(), fast);
      expect(gateway.answers()).toEqual([`GET ${path} closed`, `GET ${path} 404`, `PUT ${path} 202`, `GET ${path} 200`]);
      expect(printed()).toMatch(/The gateway failed with (ECONNRESET|UND_ERR_SOCKET) to GET \S+/);
    });
  });

  describe('when the gateway keeps answering 504 past the time allowed', () => {
    it('fails saying what failed and what to do if it keeps failing', async () => {
      gateway = new ScriptedGateway(Array.from({ length: 1000 }, () => timedOut));
      const error = await rejectionOf(loadCatalog(await gateway.start(), [first!], progress(), { ...fast, maxRetryTimeInMs: 300 }));
      expect((error as Error).message).toMatch(
        new RegExp(
          `^The gateway still answered 504 \\(The recommendation service did not answer within 10000 ms\\.\\) to GET ${path} after \\d+ tries in 0 s: its services did not catch up\\.\n` +
            'If it keeps failing, check the logs of the gateway, recommendation and vision in LOCAL_AZURE_HOME/logs .* then run `npm start` again',
        ),
      );
      expect(gateway.log.length).toBeGreaterThan(1);
      expect(gateway.log.length).toBeLessThan(20);
    });
  });

  describe('when it runs on a home other than the default one', () => {
    const home = { root: '/tmp/my copy', isDefault: false };

    it("names that home's logs folder and the start command for it when the gateway keeps failing", async () => {
      gateway = new ScriptedGateway(Array.from({ length: 1000 }, () => unavailable()));
      const error = await rejectionOf(loadCatalog(await gateway.start(), [first!], progress(), { ...fast, maxAttempts: 2, home }));
      expect((error as Error).message).toContain(
        "check the logs of the gateway, recommendation and vision in /tmp/my copy/logs and that the machine is not short of memory or CPU, then run `LOCAL_AZURE_HOME='/tmp/my copy' npm start` again",
      );
    });

    it('names them when the gateway refuses a request', async () => {
      gateway = new ScriptedGateway([problem(403, 'The caller lacks the role.')]);
      const error = await rejectionOf(loadCatalog(await gateway.start(), [first!], progress(), { ...fast, home }));
      expect((error as Error).message).toContain("Check the gateway's log in /tmp/my copy/logs, then run `LOCAL_AZURE_HOME='/tmp/my copy' npm start` again.");
    });
  });

  describe('when one request keeps getting 503 past its tries', () => {
    it('fails after maxAttempts tries of it', async () => {
      gateway = new ScriptedGateway(Array.from({ length: 1000 }, () => unavailable()));
      const error = await rejectionOf(loadCatalog(await gateway.start(), [first!], progress(), { ...fast, maxAttempts: 3 }));
      expect((error as Error).message).toContain(`The gateway still answered 503 (A service behind the gateway is unavailable right now.) to GET ${path} after 3 tries`);
      expect(gateway.answers()).toEqual([`GET ${path} 503`, `GET ${path} 503`, `GET ${path} 503`]);
    });
  });

  describe('when the gateway refuses the storefront (403)', () => {
    it('fails at once with the answer', async () => {
      gateway = new ScriptedGateway([problem(403, 'The caller lacks the role.')]);
      const error = await rejectionOf(loadCatalog(await gateway.start(), [first!], progress(), fast));
      expect((error as Error).message).toContain(`GET ${path} answered 403: {"status":403,"detail":"The caller lacks the role."}\nCheck the gateway's log`);
      expect(gateway.log).toHaveLength(1);
    });
  });

  describe('when it is aborted while it waits to try again', () => {
    it('rejects at once with the reason, and neither prints nor calls the gateway any more', async () => {
      // The first lookup is told to come back in a minute; the other two keep trying every 20 to 100 ms.
      gateway = new ScriptedGateway([unavailable({ 'retry-after': '60' }), ...Array.from({ length: 1000 }, () => unavailable())]);
      const stopping = new AbortController();
      const caller = await gateway.start();
      let callsAfterAbort = 0;
      const counting: GatewayCaller = {
        fetch: (path, init) => {
          if (stopping.signal.aborted) callsAfterAbort++;
          return caller.fetch(path, init);
        },
      };
      const load = loadCatalog(counting, catalog, progress(), { ...fast, signal: stopping.signal });
      await waitFor('a retry announced and the lookups tried again', () => printed().includes('trying again in') && gateway!.received >= 8);
      const printedBefore = printed();
      const abortedAt = performance.now();
      stopping.abort(new Error('stopped by SIGINT while starting'));

      const error = await rejectionOf(load);
      expect(performance.now() - abortedAt).toBeLessThan(1000);
      expect((error as Error).message).toBe('stopped by SIGINT while starting');
      expect(printed()).toBe(printedBefore);
      // A lookup that outlived the abort would call the gateway again within its longest wait (100 ms): silence over
      // many times that means the load's work has ended, not merely that its promise settled.
      await sleep(10 * fast.maxRetryDelayInMs);
      expect(callsAfterAbort).toBe(0);
      expect(printed()).toBe(printedBefore);
    });
  });

  describe('when it is aborted while a request is in flight', () => {
    it('cancels the request and rejects at once with the reason', async () => {
      gateway = new ScriptedGateway([hold]);
      const stopping = new AbortController();
      const load = loadCatalog(await gateway.start(), [first!], progress(), { ...fast, signal: stopping.signal });
      await waitFor('the lookup in flight', () => gateway!.received === 1);
      const abortedAt = performance.now();
      stopping.abort(new Error('stopped by SIGINT while starting'));

      expect(((await rejectionOf(load)) as Error).message).toBe('stopped by SIGINT while starting');
      expect(performance.now() - abortedAt).toBeLessThan(1000);
      await waitFor('the gateway to see the request closed', () => gateway!.answers().includes(`GET ${path} closed`));
      expect(printed()).toBe('');
    });
  });

  describe('when it is aborted before it starts', () => {
    it('rejects with the reason and calls nothing', async () => {
      gateway = new ScriptedGateway([]);
      const caller = await gateway.start();
      await expect(loadCatalog(caller, catalog, progress(), { signal: AbortSignal.abort(new Error('stopped')) })).rejects.toThrow('stopped');
      expect(gateway.received).toBe(0);
    });
  });
});
