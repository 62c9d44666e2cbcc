// The exact reference ranking of the benchmarks: every product's embedding in memory, searched exhaustively by cosine
// similarity with the catalog's filters — what the recommendation service did before the catalog moved to pgvector,
// kept here (and only here) to measure the HNSW index's recall and the cost of the database round trips.
import type { Product, RecommendationFilters } from '@keyless/contracts';
import { normalise } from '@keyless/recommendation/dist/ranking/vectors.js';

export interface ExactHit {
  product: Product;
  score: number;
}

export interface ExactQuery {
  vector: Float32Array;
  limit: number;
  filters?: RecommendationFilters;
  exclude?: readonly string[];
}

/** Embeddings of products, normalised on the way in, so similarity is a dot product. */
export class ExactRanking {
  private readonly entries = new Map<string, { product: Product; vector: Float32Array }>();

  get size(): number {
    return this.entries.size;
  }

  set(product: Product, vector: Float32Array): void {
    this.entries.set(product.id, { product, vector: normalise(vector) });
  }

  vectorOf(id: string): Float32Array | undefined {
    return this.entries.get(id)?.vector;
  }

  /** The `limit` most similar available products that pass the filters, best first (ties by id). */
  search(query: ExactQuery): ExactHit[] {
    const target = normalise(query.vector);
    const exclude = new Set(query.exclude ?? []);
    const { category, maxPrice, minPrice } = query.filters ?? {};
    const hits: ExactHit[] = [];
    for (const { product, vector } of this.entries.values()) {
      if (!product.available || exclude.has(product.id)) continue;
      if (category !== undefined && product.category.toLowerCase() !== category.toLowerCase()) continue;
      if (maxPrice !== undefined && product.price > maxPrice) continue;
      if (minPrice !== undefined && product.price < minPrice) continue;
      let score = 0;
      for (let i = 0; i < target.length; i++) score += vector[i]! * target[i]!;
      hits.push({ product, score });
    }
    return hits.sort((a, b) => b.score - a.score || a.product.id.localeCompare(b.product.id)).slice(0, query.limit);
  }
}

/** Latency percentiles and throughput of `call` run `count` times with `concurrency` in flight. */
export async function measure(count: number, concurrency: number, call: (i: number) => Promise<unknown>): Promise<{ perSecond: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await call(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { perSecond: round(count / seconds), p50: round(at(0.5), 3), p99: round(at(0.99), 3) };
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
