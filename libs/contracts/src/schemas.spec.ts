import { analyzeImageRequestSchema, maxInlineImageBytes, productSchema, recommendationFiltersSchema, recommendRequestSchema } from './index.js';

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

  describe('price', () => {
    it('takes at most two decimals, and every two-decimal price that binary floating point cannot divide by 0.01 exactly', () => {
      const product = { id: 'shoe-1', name: 'Trail runner', category: 'shoes' };
      for (const price of [76.82, 1.1, 2.03, 0.07, 999_999.99]) expect({ price, ok: productSchema.safeParse({ ...product, price }).success }).toEqual({ price, ok: true });
      expect(productSchema.safeParse({ ...product, price: 10.555 }).error?.issues).toEqual([expect.objectContaining({ path: ['price'] })]);
    });

    it('is documented without multipleOf, which JSON Schema validators divide exactly and would refuse 76.82 with', () => {
      // What @nestjs/swagger puts into the gateway's OpenAPI document.
      const price = (productSchema['~standard'].jsonSchema.output({ target: 'openapi-3.0' }) as { properties: Record<string, Record<string, unknown>> }).properties.price!;
      expect(price).toEqual({ type: 'number', minimum: 0, maximum: 1_000_000, description: expect.stringContaining('at most two decimals') });
      expect(76.82 / 0.01).not.toBe(7682);
    });
  });

  describe('stored text', () => {
    it('refuses the NUL character in a product\'s texts and in a category filter (PostgreSQL text refuses it)', () => {
      const product = { id: 'shoe-1', name: 'Trail runner', category: 'shoes', price: 1 };
      for (const field of ['name', 'description', 'category'] as const) {
        const result = productSchema.safeParse({ ...product, [field]: 'a\u0000b' });
        expect(result.error?.issues).toEqual([expect.objectContaining({ path: [field], message: 'must not contain the NUL character (U+0000)' })]);
      }
      expect(recommendationFiltersSchema.safeParse({ category: '\u0000' }).success).toBe(false);
    });

    it('takes any other unicode', () => {
      expect(productSchema.parse({ id: 'shoe-1', name: 'Zapato \u{1F45F} \u200b', category: 'calzado', price: 1 }).name).toBe('Zapato \u{1F45F} \u200b');
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
