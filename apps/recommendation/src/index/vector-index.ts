import type { Product, RecommendationFilters } from '@keyless/contracts';

/** A search hit: the product and its cosine similarity to the query. */
export interface VectorHit {
  product: Product;
  score: number;
}

/** What a search may exclude and filter on. */
export interface VectorQuery {
  vector: Float32Array;
  limit: number;
  filters?: RecommendationFilters;
  /** Product ids never returned (the product itself, products already viewed). */
  exclude?: ReadonlySet<string>;
}

/**
 * The embeddings of indexed products, in memory, searched exhaustively by cosine similarity. Vectors are
 * normalised on the way in, so similarity is a dot product. Exhaustive search over ten thousand
 * 256-dimension vectors takes a few milliseconds; past that, an ANN index belongs here.
 */
export class VectorIndex {
  private readonly entries = new Map<string, { product: Product; vector: Float32Array }>();

  get size(): number {
    return this.entries.size;
  }

  /** Adds or replaces a product's vector. */
  set(product: Product, vector: Float32Array): void {
    this.entries.set(product.id, { product, vector: normalise(vector) });
  }

  /** Updates the product data a vector is filtered by (price, availability) without re-embedding. */
  updateProduct(product: Product): void {
    const entry = this.entries.get(product.id);
    if (entry) entry.product = product;
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  vectorOf(id: string): Float32Array | undefined {
    return this.entries.get(id)?.vector;
  }

  /** The `limit` most similar available products that pass the filters, best first. */
  search(query: VectorQuery): VectorHit[] {
    const target = normalise(query.vector);
    const { category, maxPrice, minPrice } = query.filters ?? {};
    const hits: VectorHit[] = [];
    for (const { product, vector } of this.entries.values()) {
      if (!product.available || query.exclude?.has(product.id)) continue;
      if (category !== undefined && product.category.toLowerCase() !== category.toLowerCase()) continue;
      if (maxPrice !== undefined && product.price > maxPrice) continue;
      if (minPrice !== undefined && product.price < minPrice) continue;
      if (vector.length !== target.length) continue;
      hits.push({ product, score: dot(vector, target) });
    }
    return hits.sort((a, b) => b.score - a.score || a.product.id.localeCompare(b.product.id)).slice(0, query.limit);
  }
}

/** The normalised mean of `vectors` (the centre of what a shopper looked at). */
export function centroid(vectors: readonly Float32Array[]): Float32Array {
  const sum = new Float32Array(vectors[0]!.length);
  for (const vector of vectors) for (let i = 0; i < sum.length; i++) sum[i]! += vector[i]!;
  return normalise(sum);
}

export function normalise(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm === 0) return vector;
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = vector[i]! / norm;
  return out;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}
