// The catalog's vector search on PostgreSQL + pgvector (HNSW, cosine) against the exact in-memory ranking, paired
// in one run on the same products and queries: similar-products and recommend latency (p50, p99, one query at a
// time) and throughput (queries in flight), and the HNSW index's recall@10 against the exact ranking, for several
// values of hnsw.ef_search (the service uses 100 near a product, 400 near a vector: catalogSearchDefaults).
// Recommend queries rank by the centre of two random products, half of them with their category as a filter — a
// hard case for a graph search, since the centre often lies between clusters. The database is the local Azure's PostgreSQL (PGlite; the local Azure in this process, its engine in a child process), reached as the
// recommendation host's identity with real tokens over TLS; embeddings come from the local Azure OpenAI's model.
//
//   npx nx run-many -t build && npx node bench/catalog-search.bench.ts [--products 10000] [--queries 400] [--concurrency 8] [--ef 40,100,400] [--scan relaxed_order|strict_order]
//
// Loading goes through the store's own upsert and recordEmbedding (no vision: products without images), so the
// load rate printed is the catalog's write path, not the whole ingestion (bench/ingestion.bench.ts measures that).
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { demoCatalog } from '@keyless/launcher';
import { postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure } from '@keyless/local-azure/testing';
import { applyMigrations } from '@keyless/database';
import { openTestDatabase } from '@keyless/database/testing';
import { catalogSchema, PostgresCatalogStore } from '@keyless/recommendation/dist/catalog/catalog.store.js';
import { centroid } from '@keyless/recommendation/dist/ranking/vectors.js';
import { ExactRanking, measure, round } from './support/exact-ranking.ts';

// Not exported by @keyless/local-azure: the built module, typed by its source (bench/tsconfig.json).
const { LocalEmbeddingModel } = (await import(new URL('../tools/local-azure/dist/openai/embedding-model.js', import.meta.url).href)) as typeof import('../tools/local-azure/src/openai/embedding-model.ts');

const { values } = parseArgs({
  options: {
    products: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '400' },
    concurrency: { type: 'string', default: '8' },
    ef: { type: 'string', default: '40,100,400' },
    scan: { type: 'string', default: 'relaxed_order' },
  },
});
const productCount = Number(values.products);
const queryCount = Number(values.queries);
const concurrency = Number(values.concurrency);
const efValues = values.ef.split(',').map(Number);
const dimensions = 256;

/** A deterministic generator, so every run ranks the same queries. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const types = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images', variantsPerType: 1 }).length;
const products = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images', variantsPerType: Math.ceil(productCount / types) })
  .slice(0, productCount)
  .map(({ product }) => ({ ...product, imageUrl: undefined }));
const model = new LocalEmbeddingModel();

const test = await startTestAzure({ dataPlanes: [postgresDataPlane] });
const env = test.enterHost('recommendation');
const database = await openTestDatabase(env, { pool: { maxConnections: concurrency } });
try {
  await applyMigrations(database.pool, [catalogSchema(dimensions)]);
  const loader = new PostgresCatalogStore(database.pool);
  const exact = new ExactRanking();
  const loadStarted = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < products.length) {
        const product = products[next++]!;
        await loader.upsertProduct(product, new Date().toISOString());
        const job = (await loader.embeddingJob(product.id))!;
        const vector = model.embed(job.text, dimensions);
        await loader.recordEmbedding(product.id, job.textHash, vector, 'text-embedding-3-small');
        exact.set(product, vector);
      }
    }),
  );
  const loadSeconds = (performance.now() - loadStarted) / 1000;

  // Similar products of random products; recommendations from two viewed products of one category with a price cap.
  const pick = random(11);
  const available = products.filter((p) => p.available);
  const similar = Array.from({ length: queryCount }, () => available[Math.floor(pick() * available.length)]!.id);
  const recommend = Array.from({ length: queryCount }, () => {
    const first = available[Math.floor(pick() * available.length)]!;
    const second = available[Math.floor(pick() * available.length)]!;
    const vector = centroid([exact.vectorOf(first.id)!, exact.vectorOf(second.id)!]);
    return { vector, viewed: [first.id, second.id], filters: pick() < 0.5 ? { category: first.category } : { maxPrice: Math.round(first.price * 1.5) } };
  });
  const exactSimilar = (id: string) => exact.search({ vector: exact.vectorOf(id)!, limit: 10, exclude: [id] });
  const exactRecommend = (q: (typeof recommend)[number]) => exact.search({ vector: q.vector, limit: 10, filters: q.filters, exclude: q.viewed });

  const exactRuns = {
    similar: { latency: await measure(queryCount, 1, async (i) => exactSimilar(similar[i]!)), throughput: await measure(queryCount, concurrency, async (i) => exactSimilar(similar[i]!)) },
    recommend: { latency: await measure(queryCount, 1, async (i) => exactRecommend(recommend[i]!)), throughput: await measure(queryCount, concurrency, async (i) => exactRecommend(recommend[i]!)) },
  };

  const recall = (found: { product: { id: string } }[], truth: { product: { id: string } }[]): number => {
    if (!truth.length) return 1;
    const expected = new Set(truth.map((h) => h.product.id));
    return found.filter((h) => expected.has(h.product.id)).length / truth.length;
  };
  const postgres = [];
  for (const efSearch of efValues) {
    const store = new PostgresCatalogStore(database.pool, { efSearch, vectorEfSearch: efSearch, iterativeScan: values.scan as 'strict_order' | 'relaxed_order' });
    const similarQuery = (id: string) => store.search({ near: { productId: id }, limit: 10, exclude: [id] });
    const recommendQuery = (q: (typeof recommend)[number]) => store.search({ near: { vector: q.vector }, limit: 10, filters: q.filters, exclude: q.viewed });
    for (let i = 0; i < 20; i++) await similarQuery(similar[i]!); // warm-up
    let similarRecall = 0;
    let recommendRecall = 0;
    for (let i = 0; i < queryCount; i++) {
      similarRecall += recall(await similarQuery(similar[i]!), exactSimilar(similar[i]!));
      recommendRecall += recall(await recommendQuery(recommend[i]!), exactRecommend(recommend[i]!));
    }
    postgres.push({
      efSearch,
      recallAt10: { similar: round(similarRecall / queryCount, 4), recommend: round(recommendRecall / queryCount, 4) },
      similar: { latency: await measure(queryCount, 1, (i) => similarQuery(similar[i]!)), throughput: await measure(queryCount, concurrency, (i) => similarQuery(similar[i]!)) },
      recommend: { latency: await measure(queryCount, 1, (i) => recommendQuery(recommend[i]!)), throughput: await measure(queryCount, concurrency, (i) => recommendQuery(recommend[i]!)) },
    });
  }

  const row = (name: string, m: { latency: { p50: number; p99: number }; throughput: { perSecond: number } }) =>
    `${name.padEnd(34)} ${m.latency.p50.toFixed(2).padStart(8)} ${m.latency.p99.toFixed(2).padStart(8)} ${m.throughput.perSecond.toFixed(0).padStart(9)}`;
  console.log(`catalog search: ${productCount} products (${dimensions} dimensions), ${queryCount} queries, throughput at ${concurrency} in flight, iterative scan ${values.scan}; loaded at ${round(productCount / loadSeconds)} products/s`);
  console.log(`${'path'.padEnd(34)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'queries/s'.padStart(9)}  recall@10`);
  console.log(row('exact in-memory, similar', exactRuns.similar));
  console.log(row('exact in-memory, recommend', exactRuns.recommend));
  for (const run of postgres) {
    console.log(`${row(`pgvector ef_search=${run.efSearch}, similar`, run.similar)}  ${run.recallAt10.similar}`);
    console.log(`${row(`pgvector ef_search=${run.efSearch}, recommend`, run.recommend)}  ${run.recallAt10.recommend}`);
  }
  console.log(JSON.stringify({ products: productCount, dimensions, queries: queryCount, concurrency, iterativeScan: values.scan, loadPerSecond: round(productCount / loadSeconds), exact: exactRuns, postgres }));
} finally {
  await database.close();
  await test.stop();
}
