import type { z } from 'zod';
import { productUpsertedSchema } from './catalog.js';
import { queues, subscriptions, topics, type QueueName, type SubscriptionName } from './entities.js';
import {
  getProductRequestSchema,
  productViewSchema,
  recommendationResultSchema,
  recommendRequestSchema,
  similarProductsRequestSchema,
} from './recommendation.js';
import { analyzeImageRequestSchema, imageAnalysisFailedSchema, imageAnalysisSchema, imageAnalyzedSchema } from './vision.js';

/**
 * Request/reply patterns (imperative): where each request goes and the schemas of request and reply.
 * A request is a message on `queue` with subject = pattern; its reply comes back on the replies queue.
 */
export const requestContracts = {
  'recommendation.get-product': { queue: queues.recommendationRequests, request: getProductRequestSchema, reply: productViewSchema },
  'recommendation.similar-products': { queue: queues.recommendationRequests, request: similarProductsRequestSchema, reply: recommendationResultSchema },
  'recommendation.recommend': { queue: queues.recommendationRequests, request: recommendRequestSchema, reply: recommendationResultSchema },
  'vision.analyze-image': { queue: queues.visionRequests, request: analyzeImageRequestSchema, reply: imageAnalysisSchema },
} as const satisfies Record<string, { queue: QueueName; request: z.ZodType; reply: z.ZodType }>;

/**
 * Events (past tense): every event goes to the events topic with subject = pattern; `consumers` are the
 * subscriptions whose correlation filters select it (the topology file must agree — a test checks it).
 */
export const eventContracts = {
  'catalog.product.upserted': { topic: topics.events, payload: productUpsertedSchema, consumers: [subscriptions.vision, subscriptions.recommendation] },
  'vision.image.analyzed': { topic: topics.events, payload: imageAnalyzedSchema, consumers: [subscriptions.recommendation] },
  'vision.image.analysis-failed': { topic: topics.events, payload: imageAnalysisFailedSchema, consumers: [subscriptions.recommendation] },
} as const satisfies Record<string, { topic: string; payload: z.ZodType; consumers: readonly SubscriptionName[] }>;

export type RequestPattern = keyof typeof requestContracts;
export type EventPattern = keyof typeof eventContracts;

/** The request payload type of a pattern (what the caller sends; defaults not yet applied). */
export type RequestOf<P extends RequestPattern> = z.input<(typeof requestContracts)[P]['request']>;
/** The request payload a handler receives (validated, defaults applied). */
export type ParsedRequestOf<P extends RequestPattern> = z.output<(typeof requestContracts)[P]['request']>;
/** The reply type of a pattern. */
export type ReplyOf<P extends RequestPattern> = z.output<(typeof requestContracts)[P]['reply']>;
/** The payload type of an event, as a handler receives it (validated, defaults applied). */
export type EventOf<P extends EventPattern> = z.output<(typeof eventContracts)[P]['payload']>;
/** The payload type of an event, as a publisher may write it (defaults not yet applied). */
export type EventInputOf<P extends EventPattern> = z.input<(typeof eventContracts)[P]['payload']>;
