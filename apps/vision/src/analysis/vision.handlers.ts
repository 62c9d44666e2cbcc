import { Controller, Logger } from '@nestjs/common';
import { Ctx, Payload, RpcException } from '@nestjs/microservices';
import type { EventOf, ImageAnalysis, ParsedRequestOf } from '@keyless/contracts';
import { MessagingClient, OnEvent, OnRequest, ServiceBusContext, ServiceBusRecordBuilder } from '@keyless/messaging';
import { ImageAnalyzer, ImageRejectedError } from './image-analyzer.js';

/**
 * The vision service's handlers: on-demand analysis (request/reply) and the analysis of every product
 * image (events). A refused image is an answer (`invalid-request`, or a `vision.image.analysis-failed`
 * event); throttling and outages are thrown, so the settlement policy retries product events.
 */
@Controller()
export class VisionHandlers {
  private readonly log = new Logger(VisionHandlers.name);

  constructor(
    private readonly analyzer: ImageAnalyzer,
    private readonly messaging: MessagingClient,
  ) {}

  @OnRequest('vision.analyze-image')
  async analyzeImage(request: ParsedRequestOf<'vision.analyze-image'>): Promise<ImageAnalysis> {
    try {
      return await this.analyzer.analyze(request);
    } catch (error) {
      if (error instanceof ImageRejectedError) {
        // Vision's inner code (InvalidImageUrl, InvalidImageFormat, …) is a stable reason the gateway can name.
        const reason = /^[A-Za-z]\w{0,63}$/.test(error.code) ? { reason: error.code } : {};
        throw new RpcException({ code: 'invalid-request', ...reason, message: `The image was refused: ${error.message}` });
      }
      throw error;
    }
  }

  @OnEvent('catalog.product.upserted')
  async productUpserted(@Payload() { product }: EventOf<'catalog.product.upserted'>, @Ctx() context: ServiceBusContext): Promise<void> {
    if (!product.imageUrl) return;
    // Derived from the triggering event's id: a redelivered upsert republishes the same id, and the
    // events topic's duplicate detection drops the copy.
    const messageId = `vision-${context.getMessage().messageId}`;
    try {
      const analysis = await this.analyzer.analyze({ url: product.imageUrl });
      const event = { productId: product.id, imageUrl: product.imageUrl, analysis, analyzedAt: new Date().toISOString() };
      await this.messaging.publish('vision.image.analyzed', new ServiceBusRecordBuilder(event).setMessageId(messageId).build());
    } catch (error) {
      if (!(error instanceof ImageRejectedError)) throw error;
      this.log.warn(`image of product ${product.id} refused: ${error.message}`);
      const event = { productId: product.id, imageUrl: product.imageUrl, code: error.code, message: error.message, failedAt: new Date().toISOString() };
      await this.messaging.publish('vision.image.analysis-failed', new ServiceBusRecordBuilder(event).setMessageId(messageId).build());
    }
  }
}
