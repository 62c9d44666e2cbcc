import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Product } from '@keyless/contracts';
import type { EmbeddingsService } from './ai/embeddings.service.js';
import type { ExplanationsService } from './ai/explanations.service.js';
import { SqliteCatalogStore } from './catalog/catalog.store.js';
import { RecommenderService } from './recommender.service.js';

/** Embeddings that fail while `failing` is set (as Azure OpenAI does when throttling, failing or refusing the role). */
class FlakyEmbeddings {
  failing = true;
  calls = 0;
  embed(): Promise<Float32Array> {
    this.calls++;
    return this.failing ? Promise.reject(new Error('Azure OpenAI answered 500')) : Promise.resolve(new Float32Array([1, 0, 0]));
  }
}

describe(RecommenderService.name, () => {
  let dir: string;
  let store: SqliteCatalogStore;
  let embeddings: FlakyEmbeddings;
  let recommender: RecommenderService;
  const product: Product = { id: 'p-1', name: 'Trail shoe', description: '', category: 'shoes', price: 10, available: true };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recommender-'));
    store = new SqliteCatalogStore(join(dir, 'catalog.db'));
    embeddings = new FlakyEmbeddings();
    recommender = new RecommenderService(store, embeddings as unknown as EmbeddingsService, {} as ExplanationsService);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('when the embedding of an upserted product failed', () => {
    it('embeds it when the same upsert is delivered again, so the retry is not a silent no-op', async () => {
      const upsertedAt = '2026-01-01T00:00:00.000Z';
      await expect(recommender.productUpserted(product, upsertedAt)).rejects.toThrow(/500/);
      expect(store.view('p-1')!.indexing.state).toBe('pending-embedding');

      embeddings.failing = false;
      await recommender.productUpserted(product, upsertedAt);
      expect(store.view('p-1')!.indexing.state).toBe('indexed');
    });
  });

  describe('when an upsert is older than the stored product', () => {
    it('leaves the product alone and does not embed it', async () => {
      embeddings.failing = false;
      await recommender.productUpserted(product, '2026-01-02T00:00:00.000Z');
      const calls = embeddings.calls;
      await recommender.productUpserted({ ...product, name: 'Older name' }, '2026-01-01T00:00:00.000Z');
      expect(store.product('p-1')!.name).toBe('Trail shoe');
      expect(embeddings.calls).toBe(calls);
    });
  });
});
