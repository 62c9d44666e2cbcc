import { analyzeImageRequestSchema, maxInlineImageBytes, productSchema, recommendRequestSchema } from './index.js';

describe('payload schemas', () => {
  describe('productSchema', () => {
    it('applies defaults and accepts a complete product', () => {
      expect(productSchema.parse({ id: 'shoe-1', name: 'Trail runner', category: 'shoes', price: 89.9 })).toEqual({
        id: 'shoe-1', name: 'Trail runner', description: '', category: 'shoes', price: 89.9, available: true,
      });
    });

    it('names every invalid field', () => {
      const result = productSchema.safeParse({ id: '-bad', name: '', category: 'x', price: -1, imageUrl: 'ftp://x/y.png', extra: 1 });
      const paths = result.error!.issues.map((issue) => issue.path.join('.') || issue.message);
      expect(paths).toEqual(expect.arrayContaining(['id', 'name', 'price', 'imageUrl']));
      expect(result.error!.issues.some((issue) => issue.code === 'unrecognized_keys')).toBe(true);
    });
  });

  describe('recommendRequestSchema', () => {
    it('needs viewed products or a query', () => {
      expect(recommendRequestSchema.safeParse({}).success).toBe(false);
      expect(recommendRequestSchema.parse({ query: 'light running shoes' })).toMatchObject({ viewedProductIds: [], limit: 10, filters: {} });
    });
  });

  describe('analyzeImageRequestSchema', () => {
    it('accepts a URL or an inline image within the bus limit', () => {
      expect(analyzeImageRequestSchema.safeParse({ url: 'https://example.com/a.png' }).success).toBe(true);
      const small = Buffer.alloc(1024).toString('base64');
      const large = Buffer.alloc(maxInlineImageBytes + 3).toString('base64');
      expect(analyzeImageRequestSchema.safeParse({ imageBase64: small, contentType: 'image/png' }).success).toBe(true);
      expect(analyzeImageRequestSchema.safeParse({ imageBase64: large, contentType: 'image/png' }).success).toBe(false);
    });
  });
});
