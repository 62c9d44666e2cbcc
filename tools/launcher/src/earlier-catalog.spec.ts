import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
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

describe(carryOverEarlierCatalog.name, () => {
  let home: string;
  let gateway: Server;
  /** The product ids the gateway was sent, in order. */
  let upserted: string[];
  let storefront: { fetch: (path: string, init?: RequestInit) => Promise<Response> };
  let printed: string;
  let progress: Progress;

  beforeAll(async () => {
    // A gateway that accepts every upsert, as the real one does for a valid product.
    gateway = createServer((req, res) => {
      upserted.push(decodeURIComponent(req.url!.split('/').at(-1)!));
      req.resume().on('end', () => res.writeHead(202).end());
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    storefront = { fetch: (path, init) => fetch(`${url}${path}`, init) };
  });
  afterAll(() => new Promise<void>((resolve) => gateway.close(() => resolve())));
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'launcher-earlier-catalog-'));
    upserted = [];
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
});
