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

  it('answers not-found for a product it does not have, with a stable reason', async () => {
    await expect(recommender.similar({ productId: 'no-such-product', limit: 5, filters: {} })).rejects.toMatchObject({ error: { code: 'not-found', reason: 'product-not-found' } });
  });
});
