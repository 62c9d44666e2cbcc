import { z } from 'zod';

/** Product ids: what a shop uses as SKU or slug. */
export const productIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" or "-" (1–64 characters, starting with a letter or digit)');

/**
 * Text a store keeps: trimmed, between `min` and `max` characters, without the NUL character (U+0000), which a
 * PostgreSQL text column refuses — so a NUL is a 400 at the gateway, not an event that fails at the store.
 */
export function storedText(min: number, max: number): z.ZodString {
  return z.string().trim().min(min).max(max).refine((text) => !text.includes('\u0000'), 'must not contain the NUL character (U+0000)');
}

/** Zod's own multiple-of test, which allows for binary floating point (76.82 / 0.01 is not an exact integer in doubles). */
const centsStep = z.number().multipleOf(0.01);

/**
 * A price: at most two decimals. Held by a refinement, not `multipleOf`: a JSON Schema `multipleOf: 0.01` divides
 * exactly, so the validators of clients generated from the OpenAPI document (ajv, Python's jsonschema) would refuse
 * most real prices (76.82) in the gateway's answers; the document says it in the description instead.
 */
const priceSchema = z
  .number()
  .nonnegative()
  .max(1_000_000)
  .refine((price) => centsStep.safeParse(price).success, 'Invalid number: at most two decimals (a multiple of 0.01)')
  .meta({ description: "In the shop's currency, major units, with at most two decimals (a multiple of 0.01)." });

/** A product as the catalog stores it. `price` is in the shop's currency, major units. */
export const productSchema = z.strictObject({
  id: productIdSchema,
  name: storedText(1, 200),
  description: storedText(0, 4000).default(''),
  category: storedText(1, 100),
  price: priceSchema,
  /** http(s) URL of the product image; vision analyses it. */
  imageUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Whether the product can be recommended (out-of-stock products are not). Default: true. */
  available: z.boolean().default(true),
});
export type Product = z.infer<typeof productSchema>;

/** `catalog.product.upserted`: a product was created or changed at the gateway. */
export const productUpsertedSchema = z.strictObject({
  product: productSchema,
  upsertedAt: z.iso.datetime(),
});
export type ProductUpserted = z.infer<typeof productUpsertedSchema>;
