import { Inject, Injectable } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import type { AzureOpenAI } from '@keyless/auth';
import { recommendationConfig, type RecommendationConfig } from '../config/recommendation.config.js';

/** Injection token of the Azure OpenAI client (built by `@keyless/auth` from the shared credential). */
export const OPENAI_CLIENT = Symbol('OPENAI_CLIENT');

const defaults = {
  /** Inputs per embeddings call. */
  maxBatch: 64,
  /** How long the first waiting text waits for companions. */
  batchWindowInMs: 5,
};

const tracer = trace.getTracer('@keyless/recommendation');

interface Waiting {
  text: string;
  resolve: (vector: Float32Array) => void;
  reject: (error: unknown) => void;
}

/**
 * Embeds texts with Azure OpenAI, batching concurrent callers into one request (up to 64 inputs, within
 * 5 ms). Throttling (429) is waited out by the SDK, which honours `retry-after`; what still fails rejects
 * every caller of the batch.
 */
@Injectable()
export class EmbeddingsService {
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(OPENAI_CLIENT) private readonly openai: AzureOpenAI,
    @Inject(recommendationConfig.KEY) private readonly config: RecommendationConfig,
  ) {}

  embed(text: string): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      if (this.queue.length >= defaults.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), defaults.batchWindowInMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0, defaults.maxBatch);
    if (this.queue.length) this.timer = setTimeout(() => this.flush(), 0);
    if (!batch.length) return;
    tracer
      .startActiveSpan('openai.embeddings', { attributes: { 'gen_ai.request.model': this.config.deployments.embeddings, 'keyless.batch.size': batch.length } }, async (span) => {
        try {
          const response = await this.openai.embeddings.create({
            model: this.config.deployments.embeddings,
            input: batch.map((w) => w.text),
            dimensions: this.config.embeddingDimensions,
          });
          for (const item of response.data) batch[item.index]!.resolve(Float32Array.from(item.embedding));
        } finally {
          span.end();
        }
      })
      .catch((error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      });
  }
}
