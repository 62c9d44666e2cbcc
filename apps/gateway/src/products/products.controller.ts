import { Body, Controller, Get, HttpCode, Param, Put, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { randomUUID } from 'node:crypto';
import { productIdSchema, productSchema, productViewSchema, recommendationFiltersSchema, recommendationResultSchema, resultLimit, type ProductView, type RecommendationResult } from '@keyless/contracts';
import { MessagingClient, ServiceBusRecordBuilder } from '@keyless/messaging';
import { z } from 'zod';
import { RequireRoles } from '../callers/caller-auth.guard.js';
import { guardedRoute, ProblemResponses, requestReply } from '../http/openapi.js';
import { queryNumber } from '../http/request-validation.js';

/** The body of `PUT /v1/products/{id}`: a product without its id (the path names it). */
export const productBodySchema = productSchema.omit({ id: true });

/** Query of `GET /v1/products/{id}/similar`. */
export const similarQuerySchema = z.strictObject({
  limit: queryNumber('integer', z.number().int().min(resultLimit.min).max(resultLimit.max).default(resultLimit.default)),
  category: recommendationFiltersSchema.shape.category,
  maxPrice: queryNumber('decimal', recommendationFiltersSchema.shape.maxPrice),
});

/** What `PUT` answers: the event is on its way; the product view shows the indexing progress. */
const acceptedSchema = z.strictObject({ id: z.string(), status: z.literal('accepted'), upsertedAt: z.iso.datetime(), eventId: z.string() });

@ApiTags('products')
@Controller('v1/products')
export class ProductsController {
  constructor(private readonly messaging: MessagingClient) {}

  @Put(':id')
  @HttpCode(202)
  @RequireRoles('Catalog.Write')
  @ProblemResponses(...guardedRoute)
  @ApiOperation({ summary: 'Create or replace a product', description: 'Publishes catalog.product.upserted; vision analyses the image, recommendation indexes the product. Poll GET for progress: a new product reads 404 until recommendation has applied the event. A 503 whose detail says Service Bus did not confirm the change in time may still be applied: the same PUT again is safe (the newer `upsertedAt` wins).' })
  @ApiResponse({
    status: 202,
    description: 'Accepted: the change is on its way to the catalog; `Location` is the product, `upsertedAt` orders concurrent writes (the newest wins).',
    headers: { Location: { description: 'The product: `/v1/products/{id}`.', schema: { type: 'string' } } },
    standardSchema: acceptedSchema,
  })
  async upsert(
    @Param('id', { schema: productIdSchema }) id: string,
    @Body({ schema: productBodySchema }) body: z.output<typeof productBodySchema>,
    @Res({ passthrough: true }) response: Response,
  ): Promise<z.output<typeof acceptedSchema>> {
    const upsertedAt = new Date().toISOString();
    const eventId = randomUUID();
    const event = new ServiceBusRecordBuilder({ product: { ...body, id }, upsertedAt }).setMessageId(eventId).build();
    await this.messaging.publish('catalog.product.upserted', event);
    response.location(`/v1/products/${encodeURIComponent(id)}`);
    return { id, status: 'accepted', upsertedAt, eventId };
  }

  @Get(':id')
  @RequireRoles('Catalog.Read', 'Catalog.Write')
  @ProblemResponses(...guardedRoute, 404, ...requestReply)
  @ApiOperation({ summary: 'A product with its vision enrichment and indexing state' })
  @ApiResponse({ status: 200, description: 'The product as the catalog holds it, its vision enrichment (null until the image is analysed) and its indexing state.', standardSchema: productViewSchema })
  get(@Param('id', { schema: productIdSchema }) id: string): Promise<ProductView> {
    return this.messaging.request('recommendation.get-product', { id });
  }

  @Get(':id/similar')
  @RequireRoles('Recommendations.Read')
  @ProblemResponses(...guardedRoute, 404, ...requestReply)
  @ApiOperation({ summary: 'Products similar to this one', description: 'Ranked by embedding similarity, with filters; excludes the product itself and unavailable products.' })
  @ApiResponse({ status: 200, description: 'The most similar products, best first (`score`: cosine similarity), and an explanation of the picks.', standardSchema: recommendationResultSchema })
  similar(
    @Param('id', { schema: productIdSchema }) id: string,
    @Query({ schema: similarQuerySchema }) query: z.output<typeof similarQuerySchema>,
  ): Promise<RecommendationResult> {
    const { limit, ...filters } = query;
    return this.messaging.request('recommendation.similar-products', { productId: id, limit, filters: dropUndefined(filters) });
  }
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
