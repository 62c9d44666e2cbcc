import { Controller } from '@nestjs/common';
import type { EventOf, ParsedRequestOf, ProductView, RecommendationResult } from '@keyless/contracts';
import { OnEvent, OnRequest } from '@keyless/messaging';
import { RecommenderService } from '../recommender.service.js';

/**
 * The recommendation service's Service Bus handlers: queries (request/reply) and catalog/vision events. The
 * requests only read the catalog and ask the chat model for an explanation: a copy of one is answered by running
 * it again (`sideEffects: false`), without the idempotency store's two database round trips per request.
 */
@Controller()
export class RecommendationHandlers {
  constructor(private readonly recommender: RecommenderService) {}

  @OnRequest('recommendation.get-product', { sideEffects: false })
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): Promise<ProductView> {
    return this.recommender.view(id);
  }

  @OnRequest('recommendation.similar-products', { sideEffects: false })
  similar(request: ParsedRequestOf<'recommendation.similar-products'>): Promise<RecommendationResult> {
    return this.recommender.similar(request);
  }

  @OnRequest('recommendation.recommend', { sideEffects: false })
  recommend(request: ParsedRequestOf<'recommendation.recommend'>): Promise<RecommendationResult> {
    return this.recommender.recommend(request);
  }

  @OnEvent('catalog.product.upserted')
  productUpserted({ product, upsertedAt }: EventOf<'catalog.product.upserted'>): Promise<void> {
    return this.recommender.productUpserted(product, upsertedAt);
  }

  @OnEvent('vision.image.analyzed')
  imageAnalyzed({ productId, imageUrl, analysis, analyzedAt }: EventOf<'vision.image.analyzed'>): Promise<void> {
    return this.recommender.imageAnalyzed(productId, imageUrl, analysis, analyzedAt);
  }

  @OnEvent('vision.image.analysis-failed')
  imageAnalysisFailed({ productId, imageUrl, code, message, failedAt }: EventOf<'vision.image.analysis-failed'>): Promise<void> {
    return this.recommender.imageAnalysisFailed(productId, imageUrl, `${code}: ${message}`, failedAt);
  }
}
