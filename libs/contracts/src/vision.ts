import { z } from 'zod';
import { productIdSchema } from './catalog.js';

/** A tag with the model's confidence (0–1). */
export const tagSchema = z.strictObject({ name: z.string().min(1), confidence: z.number().min(0).max(1) });

/** What vision found in an image. */
export const imageAnalysisSchema = z.strictObject({
  caption: z.strictObject({ text: z.string(), confidence: z.number().min(0).max(1) }).nullable(),
  tags: z.array(tagSchema),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  modelVersion: z.string(),
});
export type ImageAnalysis = z.infer<typeof imageAnalysisSchema>;

/** Largest image an analyse request may carry inline (the Service Bus Standard tier allows 256 KiB messages). */
export const maxInlineImageBytes = 160 * 1024;

/** Content types an image may be sent inline as: `image/*` or `application/octet-stream` (the gateway's uploads too). */
export const inlineImageContentType = /^(image\/[\w.+-]+|application\/octet-stream)$/;

/** An image given by its public http(s) URL: one form of {@link analyzeImageRequestSchema}, and the gateway's JSON body. */
export const imageUrlRequestSchema = z.strictObject({ url: z.url({ protocol: /^https?$/ }) });

/** `vision.analyze-image`: analyse an image given by URL or inline (base64). */
export const analyzeImageRequestSchema = z.union([
  imageUrlRequestSchema,
  z.strictObject({
    imageBase64: z.base64().max(Math.ceil(maxInlineImageBytes / 3) * 4, `images sent inline are limited to ${maxInlineImageBytes} bytes`),
    contentType: z.string().regex(inlineImageContentType),
  }),
]);
export type AnalyzeImageRequest = z.infer<typeof analyzeImageRequestSchema>;

/** `vision.image.analyzed`: the image of a product was analysed. */
export const imageAnalyzedSchema = z.strictObject({
  productId: productIdSchema,
  imageUrl: z.string(),
  analysis: imageAnalysisSchema,
  analyzedAt: z.iso.datetime(),
});
export type ImageAnalyzed = z.infer<typeof imageAnalyzedSchema>;

/** `vision.image.analysis-failed`: the image of a product could not be analysed, and why. */
export const imageAnalysisFailedSchema = z.strictObject({
  productId: productIdSchema,
  imageUrl: z.string(),
  /** Azure AI Vision's error code (`InvalidImageUrl`, `InvalidImageFormat`, …) or `AccessDenied`. */
  code: z.string(),
  message: z.string(),
  failedAt: z.iso.datetime(),
});
export type ImageAnalysisFailed = z.infer<typeof imageAnalysisFailedSchema>;
