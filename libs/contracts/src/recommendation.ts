import { z } from 'zod';
import { productIdSchema, productSchema, storedText } from './catalog.js';
import { imageAnalysisSchema } from './vision.js';

/** Filters every recommendation query accepts. */
export const recommendationFiltersSchema = z.strictObject({
  category: storedText(1, 100).optional(),
  maxPrice: z.number().nonnegative().optional(),
  minPrice: z.number().nonnegative().optional(),
});
export type RecommendationFilters = z.infer<typeof recommendationFiltersSchema>;

/** Where a product is in the pipeline: waiting for vision, waiting for its embedding, indexed, or failed. */
export const indexingStateSchema = z.enum(['pending-vision', 'pending-embedding', 'indexed', 'failed']);

/** `recommendation.get-product`: a product with its vision enrichment and indexing state. */
export const getProductRequestSchema = z.strictObject({ id: productIdSchema });
export const productViewSchema = z.strictObject({
  product: productSchema,
  vision: imageAnalysisSchema.nullable(),
  indexing: z.strictObject({
    state: indexingStateSchema,
    updatedAt: z.iso.datetime(),
    error: z.string().optional(),
  }),
});
export type ProductView = z.infer<typeof productViewSchema>;

/** A ranked item: the product and its cosine similarity to the query (−1…1). */
export const rankedItemSchema = z.strictObject({ product: productSchema, score: z.number() });

/** What every recommendation query returns: ranked items and a short explanation grounded in them. */
export const recommendationResultSchema = z.strictObject({
  items: z.array(rankedItemSchema),
  explanation: z.string(),
});
export type RecommendationResult = z.infer<typeof recommendationResultSchema>;

/** How many results a recommendation may ask for: the one rule behind the gateway's `limit` query and the bus contracts. */
export const resultLimit = { min: 1, max: 50, default: 10 } as const;

/** The `limit` of a recommendation request ({@link resultLimit}); the gateway's query reads it from text. */
export const resultLimitSchema = z.number().int().min(resultLimit.min).max(resultLimit.max).default(resultLimit.default);

/** `recommendation.similar-products`: products like a given one. */
export const similarProductsRequestSchema = z.strictObject({
  productId: productIdSchema,
  limit: resultLimitSchema,
  filters: recommendationFiltersSchema.default({}),
});
export type SimilarProductsRequest = z.infer<typeof similarProductsRequestSchema>;

/** `recommendation.recommend`: products for a shopper, from recently viewed products and/or a query. */
export const recommendRequestSchema = z
  .strictObject({
    viewedProductIds: z.array(productIdSchema).max(50).default([]),
    query: z.string().trim().min(1).max(500).optional(),
    limit: resultLimitSchema,
    filters: recommendationFiltersSchema.default({}),
  })
  .refine((request) => request.viewedProductIds.length > 0 || request.query !== undefined, {
    message: 'give viewedProductIds, a query, or both',
    path: ['viewedProductIds'],
  });
export type RecommendRequest = z.infer<typeof recommendRequestSchema>;
