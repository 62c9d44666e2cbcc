import { Inject, Injectable } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { isUnexpectedImageAnalysisResponse, type ImageAnalysisClient } from '@keyless/auth';
import type { AnalyzeImageRequest, ImageAnalysis } from '@keyless/contracts';

/** Injection token of the Vision client (built by `@keyless/auth` from the shared credential). */
export const IMAGE_ANALYSIS_CLIENT = Symbol('IMAGE_ANALYSIS_CLIENT');

/**
 * Azure AI Vision refused the image itself (unreachable URL, not an image, too small or too large):
 * retrying cannot help. `code` is Vision's inner error code (`InvalidImageUrl`, `InvalidImageFormat`, …).
 */
export class ImageRejectedError extends Error {
  override readonly name = 'ImageRejectedError';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** Vision is throttling or failing (429, 5xx): a retry later may succeed. `status` is Vision's HTTP status. */
export class VisionUnavailableError extends Error {
  override readonly name = 'VisionUnavailableError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const features = ['Caption', 'Tags'];
const tracer = trace.getTracer('@keyless/vision');

/**
 * Analyses images with Azure AI Vision (Image Analysis 4.0): caption, tags and size. A missing role
 * surfaces as the auth library's `AccessDeniedError` (the client's diagnostics policy raises it).
 */
@Injectable()
export class ImageAnalyzer {
  constructor(@Inject(IMAGE_ANALYSIS_CLIENT) private readonly client: ImageAnalysisClient) {}

  analyze(input: AnalyzeImageRequest): Promise<ImageAnalysis> {
    return tracer.startActiveSpan('vision.imageanalysis:analyze', async (span) => {
      try {
        const queryParameters = { features, language: 'en', 'gender-neutral-caption': true };
        const response =
          'url' in input
            ? await this.client.path('/imageanalysis:analyze').post({ body: { url: input.url }, queryParameters, contentType: 'application/json' })
            : await this.client
                .path('/imageanalysis:analyze')
                .post({ body: Buffer.from(input.imageBase64, 'base64'), queryParameters, contentType: 'application/octet-stream' });
        if (isUnexpectedImageAnalysisResponse(response)) {
          const error = response.body.error as { code?: string; message?: string; innererror?: { code?: string; message?: string } };
          const status = Number(response.status);
          if (status === 400 || status === 415) {
            throw new ImageRejectedError(error.innererror?.code ?? error.code ?? 'InvalidRequest', error.innererror?.message ?? error.message ?? 'the image was refused');
          }
          throw new VisionUnavailableError(status, `Azure AI Vision answered ${status}: ${error.message ?? error.code ?? 'no details'}`);
        }
        const body = response.body;
        return {
          caption: body.captionResult ? { text: body.captionResult.text, confidence: round(body.captionResult.confidence) } : null,
          tags: (body.tagsResult?.values ?? []).map((tag) => ({ name: tag.name, confidence: round(tag.confidence) })),
          width: body.metadata.width,
          height: body.metadata.height,
          modelVersion: body.modelVersion,
        };
      } finally {
        span.end();
      }
    });
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
