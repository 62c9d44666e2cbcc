import type { Product } from '@keyless/contracts';
import { centroid, VectorIndex } from './vector-index.js';

const product = (id: string, category: string, price: number, available = true): Product => ({ id, name: id, description: '', category, price, available });

describe('VectorIndex', () => {
  const index = new VectorIndex();
  index.set(product('shoe-a', 'shoes', 100), new Float32Array([1, 0, 0]));
  index.set(product('shoe-b', 'shoes', 60), new Float32Array([0.9, 0.1, 0]));
  index.set(product('shoe-c', 'shoes', 70, false), new Float32Array([0.95, 0.05, 0]));
  index.set(product('pan', 'kitchen', 40), new Float32Array([0, 0, 1]));

  it('ranks by cosine similarity and leaves out excluded and unavailable products', () => {
    const hits = index.search({ vector: index.vectorOf('shoe-a')!, limit: 10, exclude: new Set(['shoe-a']) });
    expect(hits.map((h) => h.product.id)).toEqual(['shoe-b', 'pan']);
    expect(hits[0]!.score).toBeGreaterThan(0.99);
  });

  it('applies category and price filters', () => {
    expect(index.search({ vector: new Float32Array([1, 0, 0]), limit: 10, filters: { category: 'Kitchen' } }).map((h) => h.product.id)).toEqual(['pan']);
    expect(index.search({ vector: new Float32Array([1, 0, 0]), limit: 10, filters: { maxPrice: 65 } }).map((h) => h.product.id)).toEqual(['shoe-b', 'pan']);
  });

  it('averages viewed products into one direction', () => {
    expect([...centroid([new Float32Array([1, 0]), new Float32Array([0, 1])])].map((v) => v.toFixed(3))).toEqual(['0.707', '0.707']);
  });
});
