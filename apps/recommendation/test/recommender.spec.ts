import type { AzureOpenAI } from '@keyless/auth';
import type { Product } from '@keyless/contracts';
import { Database } from '@keyless/database';
import { openTestDatabase, type TestDatabase } from '@keyless/database/testing';
import { openAiDataPlane, postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { EmbeddingsService } from '../src/ai/embeddings.service.js';
import { ExplanationsService } from '../src/ai/explanations.service.js';
import { catalogSchema, PostgresCatalogStore } from '../src/catalog/catalog.store.js';
import type { RecommendationConfig } from '../src/config/recommendation.config.js';
import { RecommenderService } from '../src/recommender.service.js';

const product = (id: string, name: string): Product => ({ id, name, description: `A ${name.toLowerCase()}.`, category: 'shoes', price: 80, available: true });

// The recommendation service's core on the local Azure's PostgreSQL and Azure OpenAI, signed in as the recommendation
// host's identity with real tokens.
describe(RecommenderService.name, () => {
  let test: TestAzure;
  let db: TestDatabase;
  let store: PostgresCatalogStore;
  let recommender: RecommenderService;

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane, openAiDataPlane] });
    const env = test.enterHost('recommendation');
    const config = { deployments: { chat: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, embeddings: env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT! }, embeddingDimensions: 256 } as RecommendationConfig;
    db = await openTestDatabase(env, {
      schemas: [catalogSchema(config.embeddingDimensions)],
      auth: {
        resources: {
          postgres: { host: env.PGHOST!, port: Number(env.PGPORT), database: env.PGDATABASE!, user: env.PGUSER! },
          openAi: { endpoint: env.AZURE_OPENAI_ENDPOINT!, apiVersion: env.OPENAI_API_VERSION! },
        },
      },
    });
    const openAi: AzureOpenAI = db.clients.create('openAi');
    store = new PostgresCatalogStore(db.pool);
    recommender = new RecommenderService(store, new EmbeddingsService(openAi, config), new ExplanationsService(openAi, config), new Database({ pool: db.pool, schemas: [] }));
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    await test?.stop();
  });

  it('embeds an upserted product and finds it similar to a related one', async () => {
    await recommender.productUpserted(product('trail-runner', 'Trail Running Shoe'), new Date().toISOString());
    await recommender.productUpserted(product('road-runner', 'Road Running Shoe'), new Date().toISOString());
    expect((await recommender.view('trail-runner')).indexing.state).toBe('indexed');
    const similar = await recommender.similar({ productId: 'trail-runner', limit: 5, filters: {} });
    expect(similar.items.map((i) => i.product.id)).toContain('road-runner');
  });

  it('finishes the embedding when the event comes again after an instance died between storing and embedding', async () => {
    const stored = product('half-done', 'Hiking Boot');
    const upsertedAt = new Date().toISOString();
    // What the instance that died got done: the product stored, waiting for its embedding.
    await store.upsertProduct(stored, upsertedAt);
    expect((await recommender.view('half-done')).indexing.state).toBe('pending-embedding');
    // The redelivered event at the instance that takes over.
    await recommender.productUpserted(stored, upsertedAt);
    expect((await recommender.view('half-done')).indexing.state).toBe('indexed');
  });

  describe('when the embedding of an upserted product failed', () => {
    afterEach(async () => {
      await test.azure.faults.set('openai', { mode: 'none' });
    });

    it('embeds it when the same upsert is delivered again, so the retry is not a silent no-op', async () => {
      const throttled = product('retried', 'Trail Sandal');
      const upsertedAt = new Date().toISOString();
      // Azure OpenAI failing (as it does when throttling, failing or refusing the role): the handler fails, the event is redelivered.
      await test.azure.faults.set('openai', { mode: '500' });
      await expect(recommender.productUpserted(throttled, upsertedAt)).rejects.toThrow();
      expect((await recommender.view('retried')).indexing.state).toBe('pending-embedding');
      await test.azure.faults.set('openai', { mode: 'none' });
      await recommender.productUpserted(throttled, upsertedAt);
      expect((await recommender.view('retried')).indexing.state).toBe('indexed');
    });
  });

  describe('when an upsert is older than the stored product', () => {
    afterEach(async () => {
      await test.azure.faults.set('openai', { mode: 'none' });
    });

    it('leaves the product alone and does not embed it', async () => {
      await recommender.productUpserted(product('stale', 'Trail Running Shoe'), '2026-01-02T00:00:00.000Z');
      // An embedding would fail now: the stale upsert must not ask for one.
      await test.azure.faults.set('openai', { mode: '500' });
      await recommender.productUpserted(product('stale', 'Older Name'), '2026-01-01T00:00:00.000Z');
      expect(await recommender.view('stale')).toMatchObject({ product: { name: 'Trail Running Shoe' }, indexing: { state: 'indexed' } });
    });
  });

  it('answers not-found for a product it does not have, with a stable reason', async () => {
    await expect(recommender.similar({ productId: 'no-such-product', limit: 5, filters: {} })).rejects.toMatchObject({ error: { code: 'not-found', reason: 'product-not-found' } });
  });
});
