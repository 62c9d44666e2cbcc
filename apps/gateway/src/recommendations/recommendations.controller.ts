import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { recommendationResultSchema, recommendRequestSchema, type RecommendationResult, type RecommendRequest } from '@keyless/contracts';
import { MessagingClient } from '@keyless/messaging';
import { RequireRoles } from '../callers/caller-auth.guard.js';
import { guardedRoute, ProblemResponses, requestReply } from '../http/openapi.js';

@ApiTags('recommendations')
@Controller('v1/recommendations')
export class RecommendationsController {
  constructor(private readonly messaging: MessagingClient) {}

  @Post()
  @HttpCode(200)
  @RequireRoles('Recommendations.Read')
  @ProblemResponses(...guardedRoute, 404, ...requestReply)
  @ApiOperation({
    summary: 'Recommendations for a shopper',
    description: 'From recently viewed products and/or a free-text query; excludes viewed products, applies filters, and explains the picks.',
  })
  @ApiResponse({ status: 200, description: 'The recommended products, best first (`score`: cosine similarity), and an explanation grounded in them.', standardSchema: recommendationResultSchema })
  recommend(@Body({ schema: recommendRequestSchema }) body: RecommendRequest): Promise<RecommendationResult> {
    return this.messaging.request('recommendation.recommend', body);
  }
}
