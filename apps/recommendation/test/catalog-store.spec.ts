import { randomUUID } from 'node:crypto';
import type { ImageAnalysis, Product } from '@keyless/contracts';
import { applyMigrations } from '@keyless/database';
import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { catalogSchema, PostgresCatalogStore } from '../src/catalog/catalog.store.js';

const dimensions = 4;
const analysis: ImageAnalysis = { caption: { text: 'a red shoe', confidence: 0.8 }, tags: [{ name: 'red', confidence: 0.9 }, { name: 'faint', confidence: 0.2 }], width: 128, height: 128, modelVersion: 'x' };
const t = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
const vector = (...values: number[]) => new Float32Array([...values, ...Array(dimensions - values.length).fill(0)]);

// The catalog against the local Azure's PostgreSQL (pgvector), signed in as the recommendation host's identity with
// real tokens. Two pools stand for two instances of the service.
describe(PostgresCatalogStore.name, () => {
  let test: TestAzure;
  let first: TestDatabase;
  let second: TestDatabase;
  let store: PostgresCatalogStore;
  let other: PostgresCatalogStore;
  /** A product id no other test uses. */
  const id = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
  const shoe = (productId: string, overrides: Partial<Product> = {}): Product => ({
    id: productId,
    name: 'Trail Runner',
    description: 'A grippy trail shoe.',
    category: 'shoes',
    price: 120,
    imageUrl: `http://img/${productId}.png`,
    available: true,
    ...overrides,
  });
  async function indexed(product: Product, at: string, direction: Float32Array): Promise<void> {
    await store.upsertProduct({ ...product, imageUrl: undefined }, at);
    const job = (await store.embeddingJob(product.id))!;
    expect(await store.recordEmbedding(product.id, job.textHash, direction, 'm')).toBe(true);
  }

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
    const env = test.enterHost('recommendation');
    [first, second] = await Promise.all([openTestDatabase(env), openTestDatabase(env)]);
    // Both "instances" apply the schema at once: the advisory lock makes one wait for the other.
    const reports = await Promise.all([applyMigrations(first.pool, [catalogSchema(dimensions)]), applyMigrations(second.pool, [catalogSchema(dimensions)])]);
    expect(reports.map((r) => r.applied.length).sort()).toEqual([0, 1]);
    store = new PostgresCatalogStore(first.pool);
    other = new PostgresCatalogStore(second.pool);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([first?.close(), second?.close()]);
    await test?.stop();
  });

  describe('when a product with an image arrives', () => {
    it('takes it through pending-vision, pending-embedding and indexed', async () => {
      const product = shoe(id('shoe'));
      expect(await store.upsertProduct(product, t(1))).toBe('created');
      expect((await store.view(product.id))!.indexing.state).toBe('pending-vision');
      await store.recordVision(product.id, product.imageUrl!, { analysis }, t(2));
      const job = (await other.embeddingJob(product.id))!;
      expect(job.text).toBe('Trail Runner. Category: shoes. A grippy trail shoe. Image: a red shoe. Tags: red.');
      expect(await other.recordEmbedding(product.id, job.textHash, vector(1), 'm')).toBe(true);
      expect(await store.view(product.id)).toMatchObject({ product, vision: analysis, indexing: { state: 'indexed' }, embedded: true });
    });

    it('embeds a product without an image straight away', async () => {
      const product = shoe(id('plain'), { imageUrl: undefined });
      await store.upsertProduct(product, t(1));
      expect((await store.view(product.id))!.indexing.state).toBe('pending-embedding');
      expect((await store.pendingEmbeddings()).map((j) => j.productId)).toContain(product.id);
    });

    it('keeps a vision result that arrives before its product', async () => {
      const product = shoe(id('early'));
      await store.recordVision(product.id, product.imageUrl!, { analysis }, t(1));
      await other.upsertProduct(product, t(2));
      expect((await store.view(product.id))!.indexing.state).toBe('pending-embedding');
    });

    it('shows a failed image analysis on the product and still indexes its text', async () => {
      const product = shoe(id('broken'));
      await store.upsertProduct(product, t(1));
      await store.recordVision(product.id, product.imageUrl!, { failure: 'InvalidImageUrl: not reachable' }, t(2));
      expect(await store.view(product.id)).toMatchObject({ vision: null, indexing: { state: 'pending-embedding', error: 'image analysis failed: InvalidImageUrl: not reachable' } });
    });
  });

  describe('when versions of a product arrive out of order', () => {
    it('ignores an older version and reports an identical one as unchanged', async () => {
      const product = shoe(id('order'));
      await store.upsertProduct({ ...product, price: 99 }, t(5));
      expect(await other.upsertProduct(product, t(4))).toBe('stale');
      expect(await other.upsertProduct({ ...product, price: 99 }, t(6))).toBe('unchanged');
      expect((await store.view(product.id))!.product.price).toBe(99);
    });

    it('keeps the newer upsertedAt of an unchanged version, so an older change arriving later loses', async () => {
      const product = shoe(id('bump'));
      await store.upsertProduct(product, t(1));
      expect(await store.upsertProduct(product, t(9))).toBe('unchanged');
      expect(await other.upsertProduct({ ...product, price: 5 }, t(5))).toBe('stale');
      expect((await store.view(product.id))!.product.price).toBe(120);
    });

    it('lets the newer upsertedAt win, every time, when two instances write at once', async () => {
      for (let round = 0; round < 5; round++) {
        const productId = id('race');
        // Ten versions, minute m priced m, sent in a scrambled order, alternating between the two instances.
        const minutes = Array.from({ length: 10 }, (_, i) => 10 + ((i * 7 + round) % 10));
        const results = await Promise.all(minutes.map((m, i) => (i % 2 ? other : store).upsertProduct(shoe(productId, { price: m }), t(m))));
        expect(results.filter((r) => r === 'created')).toHaveLength(1);
        expect((await other.view(productId))!.product.price).toBe(19);
      }
    });

    it('converges on the same version when two writers send different data with the same upsertedAt', async () => {
      const productId = id('tie');
      await Promise.all([store.upsertProduct(shoe(productId, { price: 1 }), t(3)), other.upsertProduct(shoe(productId, { price: 2 }), t(3))]);
      const winner = (await store.view(productId))!.product.price;
      expect(await store.upsertProduct(shoe(productId, { price: winner === 1 ? 2 : 1 }), t(3))).toBe('stale');
    });
  });

  describe('when a product changes after it was embedded', () => {
    it('re-embeds when the text changes, not when only the price does, and drops a late embedding of the old text', async () => {
      const product = shoe(id('text'), { imageUrl: undefined });
      await indexed(product, t(1), vector(1));
      const old = await store.embeddingJob(product.id);
      expect(old).toBeUndefined();
      expect(await store.upsertProduct({ ...product, price: 80 }, t(2))).toBe('updated');
      expect((await store.view(product.id))!.indexing.state).toBe('indexed');
      await store.upsertProduct({ ...product, price: 80, description: 'Now waterproof.' }, t(3));
      const job = (await store.embeddingJob(product.id))!;
      expect((await store.view(product.id))!.indexing.state).toBe('pending-embedding');
      expect(await store.recordEmbedding(product.id, 'a hash of the text before', vector(0, 1), 'm')).toBe(false);
      expect(await store.recordEmbedding(product.id, job.textHash, vector(0, 1), 'm')).toBe(true);
      expect((await store.products([product.id]))[0]!.vector).toEqual(vector(0, 1));
    });

    it('keeps ranking it by its last embedding while it waits for the new one', async () => {
      const product = shoe(id('waiting'), { imageUrl: undefined, category: `waiting-${randomUUID()}` });
      await indexed(product, t(1), vector(1));
      await store.upsertProduct({ ...product, description: 'Changed.' }, t(2));
      const hits = await store.search({ near: { vector: vector(1) }, limit: 5, filters: { category: product.category } });
      expect(hits.map((h) => h.product.description)).toEqual(['Changed.']);
    });
  });

  describe('when searching', () => {
    const category = `search-${randomUUID().slice(0, 8)}`;
    const products = {
      a: shoe(id('a'), { category, price: 100, imageUrl: undefined }),
      b: shoe(id('b'), { category, price: 60, imageUrl: undefined }),
      unavailable: shoe(id('c'), { category, price: 70, available: false, imageUrl: undefined }),
      pan: shoe(id('pan'), { category: `${category}-Kitchen`, price: 40, imageUrl: undefined }),
    };
    beforeAll(async () => {
      await indexed(products.a, t(1), vector(1, 0, 0));
      await indexed(products.b, t(1), vector(0.9, 0.1, 0));
      await indexed(products.unavailable, t(1), vector(0.95, 0.05, 0));
      await indexed(products.pan, t(1), vector(0, 0, 1));
    });

    it('ranks by cosine similarity to a product, leaving out excluded and unavailable products', async () => {
      const hits = await other.search({ near: { productId: products.a.id }, limit: 2, filters: { category }, exclude: [products.a.id] });
      expect(hits.map((h) => h.product.id)).toEqual([products.b.id]);
      expect(hits[0]!.score).toBeCloseTo(0.9939, 3);
    });

    it('filters by category whatever its case, and by price range', async () => {
      const near = { vector: vector(1, 0, 0) };
      expect((await store.search({ near, limit: 10, filters: { category: `${category}-kitchen` } })).map((h) => h.product.id)).toEqual([products.pan.id]);
      expect((await store.search({ near, limit: 10, filters: { category, maxPrice: 65 } })).map((h) => h.product.id)).toEqual([products.b.id]);
      expect((await store.search({ near, limit: 10, filters: { category, minPrice: 65, maxPrice: 100 } })).map((h) => h.product.id)).toEqual([products.a.id]);
    });

    it('returns the viewed products with their embeddings, in the order asked, skipping unknown ids', async () => {
      const found = await store.products([products.pan.id, 'no-such-product', products.a.id]);
      expect(found.map((p) => [p.product.id, [...p.vector!]])).toEqual([
        [products.pan.id, [0, 0, 1, 0]],
        [products.a.id, [1, 0, 0, 0]],
      ]);
    });
  });

  describe('when counting', () => {
    it('counts products per indexing state', async () => {
      const counts = await store.counts();
      expect(Object.keys(counts).sort()).toEqual(['failed', 'indexed', 'pending-embedding', 'pending-vision']);
      expect(counts.indexed).toBeGreaterThan(0);
    });
  });

  describe('when the database was created with other dimensions', () => {
    it('refuses to start, saying what to set', async () => {
      await expect(applyMigrations(first.pool, [catalogSchema(dimensions + 1)])).rejects.toMatchObject({
        name: 'DatabaseError',
        code: 'SchemaConflict',
        message: expect.stringContaining(`Set EMBEDDINGS_DIMENSIONS=${dimensions}`),
      });
    });
  });
});
