import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Progress } from '../progress.js';
import { loadCatalog, type GatewayCaller } from './catalog-loader.js';
import { demoCatalog } from './demo-catalog.js';

type Answer = (request: IncomingMessage, response: ServerResponse) => void;

/**
 * A gateway stand-in on a real socket: it answers the scripted answers first, in order, then as a gateway whose
 * services are up (GET: 200 with the stored product's indexing state, or 404; PUT: stores the product, 202).
 */
class ScriptedGateway {
  readonly log: { request: string; status: number | 'reset'; at: number }[] = [];
  private readonly stored = new Set<string>();
  private server!: Server;

  constructor(private readonly script: Answer[]) {}

  async start(): Promise<GatewayCaller> {
    this.server = createServer((request, response) => {
      const name = `${request.method} ${request.url}`;
      const scripted = this.script.shift();
      response.on('close', () => this.log.push({ request: name, status: response.writableFinished ? response.statusCode : 'reset', at: performance.now() }));
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

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const status =
  (code: number, headers: Record<string, string> = {}): Answer =>
  (_request, response) =>
    response.writeHead(code, { 'content-type': 'application/problem+json', ...headers }).end(JSON.stringify({ status: code }));
const reset: Answer = (request) => request.socket.destroy();

describe(loadCatalog.name, () => {
  const [first] = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images' });
  const catalog = [first!];
  const path = `/v1/products/${encodeURIComponent(first!.product.id)}`;
  let gateway: ScriptedGateway;
  let output: string[];
  const progress = (): Progress => new Progress({ isTTY: false, write: (text: string) => output.push(text) > 0 } as unknown as NodeJS.WriteStream);
  const fast = { firstRetryDelayInMs: 20, maxRetryDelayInMs: 100 };

  beforeEach(() => {
    output = [];
  });
  afterEach(() => gateway.stop());

  describe('when the gateway answers 504 while its services catch up', () => {
    it('tries the lookup and the upsert again, says what it waits for, and loads the product', async () => {
      gateway = new ScriptedGateway([status(504), status(504)]);
      const caller = await gateway.start();
      await loadCatalog(caller, catalog, progress(), fast);
      expect(gateway.log.map(({ request, status }) => `${request} ${status}`)).toEqual([`GET ${path} 504`, `GET ${path} 504`, `GET ${path} 404`, `PUT ${path} 202`, `GET ${path} 200`]);
      expect(output.join('')).toContain(`waiting for the gateway's services to catch up: GET ${path} answered 504`);
    });
  });

  describe('when the gateway answers 503 with Retry-After', () => {
    it('waits as long as Retry-After says before trying again', async () => {
      gateway = new ScriptedGateway([status(503, { 'retry-after': '1' })]);
      await loadCatalog(await gateway.start(), catalog, progress(), fast);
      const [unavailable, next] = gateway.log;
      expect(unavailable!.status).toBe(503);
      expect(next!.at - unavailable!.at).toBeGreaterThanOrEqual(950);
    });
  });

  describe('when the connection is reset (a service restarting)', () => {
    it('tries again and loads the product', async () => {
      gateway = new ScriptedGateway([reset]);
      await loadCatalog(await gateway.start(), catalog, progress(), fast);
      expect(gateway.log.map(({ request, status }) => `${request} ${status}`)).toEqual([`GET ${path} reset`, `GET ${path} 404`, `PUT ${path} 202`, `GET ${path} 200`]);
      expect(output.join('')).toMatch(/GET \S+ failed with (ECONNRESET|UND_ERR_SOCKET)/);
    });
  });

  describe('when the gateway keeps answering 504 past the budget', () => {
    it('fails saying what it waited for and what to check', async () => {
      gateway = new ScriptedGateway(Array.from({ length: 100 }, () => status(504)));
      await expect(loadCatalog(await gateway.start(), catalog, progress(), { ...fast, transientBudgetInMs: 300 })).rejects.toThrow(
        /^The gateway still answered 504 to GET \S+ after 0 s of retries: its services did not catch up\.\nCheck the logs in LOCAL_AZURE_HOME\/logs .* then run `npm start` again\.$/s,
      );
      expect(gateway.log.length).toBeGreaterThan(1);
    });
  });

  describe('when the gateway refuses the storefront (403)', () => {
    it('fails at once with the answer', async () => {
      gateway = new ScriptedGateway([status(403)]);
      await expect(loadCatalog(await gateway.start(), catalog, progress(), fast)).rejects.toThrow(`GET ${path} answered 403: {"status":403}\nCheck the gateway's log`);
      expect(gateway.log).toHaveLength(1);
    });
  });
});
