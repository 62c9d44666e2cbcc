import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectionOf, waitFor } from '@keyless/testing';
import { carryOverEarlierCatalog } from './earlier-catalog.js';
import { Progress } from './progress.js';

/** An earlier release's catalog in the home: `apps/recommendation/catalog.db`, its products as that release stored them. */
function writeEarlierCatalog(home: string, ids: string[]): void {
  const folder = join(home, 'apps', 'recommendation');
  mkdirSync(folder, { recursive: true });
  const db = new DatabaseSync(join(folder, 'catalog.db'));
  db.exec('CREATE TABLE products (id TEXT PRIMARY KEY, data TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO products VALUES (?, ?)');
  for (const id of ids) insert.run(id, JSON.stringify({ id, name: `Product ${id}`, description: 'Kept by an earlier release.', category: 'outdoor', price: 5 }));
  db.close();
}

type Answer = (request: IncomingMessage, response: ServerResponse) => void;
const unavailable: Answer = (_request, response) =>
  response.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 503, detail: 'A service behind the gateway is unavailable right now.' }));
const timedOut: Answer = (_request, response) =>
  response.writeHead(504, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 504, detail: 'The recommendation service did not answer within 10000 ms.' }));

describe(carryOverEarlierCatalog.name, () => {
  let home: string;
  let gateway: Server;
  /** The product ids the gateway was sent, in order (those it answered from the script included). */
  let upserted: string[];
  /** Answers the gateway gives first, in order, before it accepts upserts as the real one does. */
  let script: Answer[];
  const fast = { firstRetryDelayInMs: 20, maxRetryDelayInMs: 100 };
  let storefront: { fetch: (path: string, init?: RequestInit) => Promise<Response> };
  let printed: string;
  let progress: Progress;

  beforeAll(async () => {
    // A gateway that accepts every upsert, as the real one does for a valid product.
    gateway = createServer((req, res) => {
      upserted.push(decodeURIComponent(req.url!.split('/').at(-1)!));
      const scripted = script.shift();
      req.resume().on('end', () => (scripted ? scripted(req, res) : res.writeHead(202).end()));
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    storefront = { fetch: (path, init) => fetch(`${url}${path}`, init) };
  });
  afterAll(() => new Promise<void>((resolve) => gateway.close(() => resolve())));
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'launcher-earlier-catalog-'));
    upserted = [];
    script = [];
    printed = '';
    progress = new Progress({ isTTY: false, write: (text: string) => ((printed += text), true) } as unknown as NodeJS.WriteStream);
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const apps = () => join(home, 'apps');

  it('upserts its products and moves the folder to apps/recommendation.carried-over, naming it', async () => {
    writeEarlierCatalog(home, ['lantern', 'tent']);
    await carryOverEarlierCatalog(home, storefront, progress);
    expect(upserted.sort()).toEqual(['lantern', 'tent']);
    expect(existsSync(join(apps(), 'recommendation.carried-over', 'catalog.db'))).toBe(true);
    expect(existsSync(join(apps(), 'recommendation'))).toBe(false);
    expect(printed).toContain(`The old files are kept in ${join(apps(), 'recommendation.carried-over')} (delete it`);
  });

  describe('when apps/recommendation.carried-over is already there', () => {
    it('moves the folder to the first free .carried-over-N instead, names that one, and leaves the others as they were', async () => {
      // An earlier carry-over, and a second one of another old home copied in.
      for (const taken of ['recommendation.carried-over', 'recommendation.carried-over-2']) {
        mkdirSync(join(apps(), taken), { recursive: true });
        writeFileSync(join(apps(), taken, 'catalog.db'), taken);
      }
      writeEarlierCatalog(home, ['lantern']);
      await carryOverEarlierCatalog(home, storefront, progress);
      expect(upserted).toEqual(['lantern']);
      const kept = join(apps(), 'recommendation.carried-over-3');
      expect(existsSync(join(kept, 'catalog.db'))).toBe(true);
      expect(existsSync(join(apps(), 'recommendation'))).toBe(false);
      expect(printed).toContain(`The old files are kept in ${kept} (delete it`);
      for (const taken of ['recommendation.carried-over', 'recommendation.carried-over-2']) expect(readFileSync(join(apps(), taken, 'catalog.db'), 'utf8')).toBe(taken);
    });

    it('does not take its place when it is empty (a rename onto an empty folder would replace it)', async () => {
      mkdirSync(join(apps(), 'recommendation.carried-over'), { recursive: true });
      writeEarlierCatalog(home, ['lantern']);
      await carryOverEarlierCatalog(home, storefront, progress);
      expect(existsSync(join(apps(), 'recommendation.carried-over-2', 'catalog.db'))).toBe(true);
      expect(existsSync(join(apps(), 'recommendation.carried-over', 'catalog.db'))).toBe(false);
      expect(printed).toContain(`The old files are kept in ${join(apps(), 'recommendation.carried-over-2')} (delete it`);
    });
  });

  describe('when the gateway answers 503 and 504 while its services catch up', () => {
    it('tries the upsert again, saying what it retries and why, and carries the product over', async () => {
      script = [unavailable, timedOut];
      writeEarlierCatalog(home, ['lantern']);
      await carryOverEarlierCatalog(home, storefront, progress, new Set(), fast);
      expect(upserted).toEqual(['lantern', 'lantern', 'lantern']);
      expect(printed).toContain(
        'The gateway answered 503 (A service behind the gateway is unavailable right now.) to PUT /v1/products/lantern (its services are still catching up): trying again in',
      );
      expect(printed).toMatch(/\(try 2 of at most 20; the carry-over gives up after \d+ s more of such answers\)/);
      expect(existsSync(join(apps(), 'recommendation.carried-over', 'catalog.db'))).toBe(true);
    });
  });

  describe('when the gateway keeps answering 503 past the tries allowed', () => {
    it('stops saying what failed and what to do, and keeps the folder for the next start', async () => {
      script = Array.from({ length: 100 }, () => unavailable);
      writeEarlierCatalog(home, ['lantern']);
      const error = await rejectionOf(carryOverEarlierCatalog(home, storefront, progress, new Set(), { ...fast, maxAttempts: 3 }));
      const file = join(apps(), 'recommendation', 'catalog.db');
      const message = (error as Error).message;
      expect(message).toMatch(
        /^Carrying over the catalog of .* stopped: The gateway still answered 503 \(A service behind the gateway is unavailable right now\.\) to PUT \/v1\/products\/lantern after 3 tries in \d+ s: its services did not catch up\.\n/,
      );
      expect(message).toContain(`Carrying over the catalog of ${file} stopped: `);
      // The home is named (its logs, the start command for it), not LOCAL_AZURE_HOME, which the user may not have set.
      expect(message.endsWith(` in ${join(home, 'logs')} and that the machine is not short of memory or CPU, then run \`LOCAL_AZURE_HOME=${home} npm start\` again. It is kept, and carried over again at the next start.`)).toBe(true);
      expect(upserted).toEqual(['lantern', 'lantern', 'lantern']);
      expect(existsSync(file)).toBe(true);
    });
  });

  describe('when it is stopped (Ctrl-C) while it waits to try again', () => {
    it('rejects at once with the reason, prints and sends nothing more, and keeps the folder', async () => {
      script = Array.from({ length: 1000 }, () => unavailable);
      writeEarlierCatalog(home, ['lantern', 'tent']);
      const stopping = new AbortController();
      const carrying = carryOverEarlierCatalog(home, storefront, progress, new Set(), { ...fast, signal: stopping.signal });
      await waitFor('a retry announced and the upserts tried again', () => printed.includes('trying again in') && upserted.length >= 6);
      const printedBefore = printed;
      const abortedAt = performance.now();
      stopping.abort(new Error('stopped by SIGINT while starting'));

      expect(((await rejectionOf(carrying)) as Error).message).toBe('stopped by SIGINT while starting');
      expect(performance.now() - abortedAt).toBeLessThan(1000);
      const sentAtAbort = upserted.length;
      // An upsert that outlived the stop would be sent again within its longest wait (100 ms): silence over many times
      // that means the carry-over's work has ended, not merely that its promise settled.
      await sleep(10 * fast.maxRetryDelayInMs);
      expect(upserted.length).toBe(sentAtAbort);
      expect(printed).toBe(printedBefore);
      expect(existsSync(join(apps(), 'recommendation', 'catalog.db'))).toBe(true);
    });
  });
});
