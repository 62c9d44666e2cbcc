import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { readEnvFile, StorefrontCaller, waitFor } from '@keyless/launcher';
import { launcherPort, NpmStart } from './npm-start.js';

/**
 * The catalog `npm start` of the first releases left in the home: the recommendation service's SQLite store in
 * `apps/recommendation/catalog.db`, in its tables of then (vision results and embeddings beside the products).
 */
function writeEarlierCatalog(home: string, products: Record<string, unknown>[]): void {
  const folder = join(home, 'apps', 'recommendation');
  mkdirSync(folder, { recursive: true });
  const db = new DatabaseSync(join(folder, 'catalog.db'));
  db.exec(`
    CREATE TABLE products (
      id TEXT PRIMARY KEY, data TEXT NOT NULL, upserted_at TEXT NOT NULL,
      state TEXT NOT NULL, state_updated_at TEXT NOT NULL, error TEXT, text_hash TEXT);
    CREATE TABLE vision (product_id TEXT PRIMARY KEY, image_url TEXT NOT NULL, analysis TEXT, failure TEXT, at TEXT NOT NULL);
    CREATE TABLE embeddings (product_id TEXT PRIMARY KEY, text_hash TEXT NOT NULL, vector BLOB NOT NULL, model TEXT NOT NULL);
  `);
  const insert = db.prepare('INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?)');
  const at = new Date(Date.now() - 86_400_000).toISOString();
  for (const product of products) insert.run(product.id as string, JSON.stringify(product), at, 'indexed', at, null, null);
  db.close();
}

// `npm start` on a home an earlier release used, whose catalog was a SQLite file of the recommendation service:
// the products the user had upserted are carried over into the catalog in PostgreSQL, not silently left behind.
describe('npm start on a home whose catalog an earlier release kept in SQLite', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'keyless-upgrade-e2e-'));
  const home = join(scratch, 'state');
  let npmStart: NpmStart;
  let gatewayPort: number;

  beforeAll(async () => {
    gatewayPort = await launcherPort();
    writeEarlierCatalog(home, [
      { id: 'lantern-kept', name: 'Trail Lantern', description: 'A green camping lantern upserted before the upgrade.', category: 'outdoor', price: 19.99, imageUrl: `http://127.0.0.1:${gatewayPort + 1}/images/lantern-kept.png`, available: true },
      { id: 'priced-below-zero', name: 'Broken Offer', description: 'A product the gateway no longer takes.', category: 'outdoor', price: -5, imageUrl: `http://127.0.0.1:${gatewayPort + 1}/images/x.png`, available: true },
    ]);
    npmStart = await NpmStart.start({ LOCAL_AZURE_HOME: home, PORT: String(gatewayPort), KEYLESS_DEMO_CATALOG: 'false', KEYLESS_REPLICAS: '1' });
  }, 200_000);

  afterAll(async () => {
    await npmStart?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('upserts its products into the catalog, names those the gateway refuses, and moves the old files aside', async () => {
    const file = join(home, 'apps', 'recommendation', 'catalog.db');
    expect(npmStart.output).toContain(`The catalog is in PostgreSQL now: 1 product of the earlier ${file} upserted into it (indexed in the background); the gateway refused priced-below-zero (`);
    expect(npmStart.output).toContain(`The old files are kept in ${join(home, 'apps', 'recommendation.carried-over')}`);
    expect(existsSync(join(home, 'apps', 'recommendation.carried-over', 'catalog.db'))).toBe(true);
    expect(existsSync(file)).toBe(false);

    const storefront = await StorefrontCaller.create(readEnvFile(join(home, 'env', 'storefront.env')), `http://127.0.0.1:${gatewayPort}`);
    try {
      const product = async () => {
        const response = await storefront.fetch('/v1/products/lantern-kept');
        return { status: response.status, body: response.status === 200 ? ((await response.json()) as { product: Record<string, unknown> }) : await response.text() };
      };
      // The upsert is applied once its event reaches the recommendation service.
      await waitFor(async () => (await product()).status === 200, 30_000, () => 'the carried-over product never appeared in the catalog', 250);
      expect((await product()).body).toMatchObject({ product: { id: 'lantern-kept', name: 'Trail Lantern', category: 'outdoor', price: 19.99 } });
      expect((await storefront.fetch('/v1/products/priced-below-zero')).status).toBe(404);
    } finally {
      await storefront.close();
    }
  }, 60_000);
});
