import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageAnalysis, Product } from '@keyless/contracts';
import { SqliteCatalogStore } from './catalog.store.js';

const shoe: Product = { id: 'shoe-1', name: 'Trail Runner', description: 'A grippy trail shoe.', category: 'shoes', price: 120, imageUrl: 'http://img/shoe-1.png', available: true };
const analysis: ImageAnalysis = { caption: { text: 'a red shoe', confidence: 0.8 }, tags: [{ name: 'red', confidence: 0.9 }, { name: 'faint', confidence: 0.2 }], width: 128, height: 128, modelVersion: 'x' };
const t = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

describe('SqliteCatalogStore', () => {
  let dir: string;
  let store: SqliteCatalogStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'catalog-'));
    store = new SqliteCatalogStore(join(dir, 'catalog.db'));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes a product with an image through pending-vision, pending-embedding and indexed', () => {
    expect(store.upsertProduct(shoe, t(1))).toBe('created');
    expect(store.view('shoe-1')!.indexing.state).toBe('pending-vision');
    store.recordVision('shoe-1', shoe.imageUrl!, { analysis }, t(2));
    const job = store.embeddingJob('shoe-1')!;
    expect(job.text).toBe('Trail Runner. Category: shoes. A grippy trail shoe. Image: a red shoe. Tags: red.');
    expect(store.recordEmbedding('shoe-1', job.textHash, new Float32Array([1, 0]), 'm')).toBe(true);
    expect(store.view('shoe-1')).toMatchObject({ vision: analysis, indexing: { state: 'indexed' } });
    expect(store.indexed()).toEqual([{ product: shoe, vector: new Float32Array([1, 0]) }]);
  });

  it('embeds a product without an image straight away', () => {
    store.upsertProduct({ ...shoe, imageUrl: undefined }, t(1));
    expect(store.view('shoe-1')!.indexing.state).toBe('pending-embedding');
  });

  it('ignores an older version of a product and reports an identical one as unchanged', () => {
    store.upsertProduct({ ...shoe, price: 99 }, t(5));
    expect(store.upsertProduct(shoe, t(4))).toBe('stale');
    expect(store.upsertProduct({ ...shoe, price: 99 }, t(6))).toBe('unchanged');
    expect(store.product('shoe-1')!.price).toBe(99);
  });

  it('keeps a vision result that arrives before its product', () => {
    store.recordVision('shoe-1', shoe.imageUrl!, { analysis }, t(1));
    store.upsertProduct(shoe, t(2));
    expect(store.view('shoe-1')!.indexing.state).toBe('pending-embedding');
  });

  it('re-embeds when the text changes, not when only the price does', () => {
    store.upsertProduct({ ...shoe, imageUrl: undefined }, t(1));
    const first = store.embeddingJob('shoe-1')!;
    store.recordEmbedding('shoe-1', first.textHash, new Float32Array([1, 0]), 'm');
    store.upsertProduct({ ...shoe, imageUrl: undefined, price: 80 }, t(2));
    expect(store.view('shoe-1')!.indexing.state).toBe('indexed');
    store.upsertProduct({ ...shoe, imageUrl: undefined, price: 80, description: 'Now waterproof.' }, t(3));
    expect(store.view('shoe-1')!.indexing.state).toBe('pending-embedding');
    expect(store.recordEmbedding('shoe-1', first.textHash, new Float32Array([0, 1]), 'm')).toBe(false);
  });

  it('shows a failed image analysis on the product and still indexes its text', () => {
    store.upsertProduct(shoe, t(1));
    store.recordVision('shoe-1', shoe.imageUrl!, { failure: 'InvalidImageUrl: not reachable' }, t(2));
    expect(store.view('shoe-1')).toMatchObject({ vision: null, indexing: { state: 'pending-embedding', error: 'image analysis failed: InvalidImageUrl: not reachable' } });
  });

  it('keeps everything across a restart', () => {
    store.upsertProduct({ ...shoe, imageUrl: undefined }, t(1));
    store.recordEmbedding('shoe-1', store.embeddingJob('shoe-1')!.textHash, new Float32Array([0.5, 0.5]), 'm');
    store.close();
    store = new SqliteCatalogStore(join(dir, 'catalog.db'));
    expect(store.indexed()).toHaveLength(1);
    expect(store.counts()).toEqual({ 'pending-vision': 0, 'pending-embedding': 0, indexed: 1, failed: 0 });
  });
});
