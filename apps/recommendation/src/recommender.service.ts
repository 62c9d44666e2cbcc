import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import type { ImageAnalysis, Product, ProductView, RecommendationResult, RecommendRequest, SimilarProductsRequest } from '@keyless/contracts';
import { Database } from '@keyless/database';
import { CATALOG_STORE } from './catalog/catalog.module-tokens.js';
import type { CatalogHit, CatalogStore } from './catalog/catalog.store.js';
import { EmbeddingsService } from './ai/embeddings.service.js';
import { ExplanationsService } from './ai/explanations.service.js';
import { centroid } from './ranking/vectors.js';

/**
 * The recommendation service's core: keeps the catalog's embeddings in step with its products (embedding them
 * when their text or vision tags change) and answers similar-product and shopper queries from the shared catalog.
 */
@Injectable()
export class RecommenderService implements OnApplicationBootstrap {
  private readonly log = new Logger(RecommenderService.name);

  constructor(
    @Inject(CATALOG_STORE) private readonly store: CatalogStore,
    private readonly embeddings: EmbeddingsService,
    private readonly explanations: ExplanationsService,
    private readonly database: Database,
  ) {}

  /**
   * Once the database is ready, embeds what was left pending (in the background: the app is ready meanwhile). Every
   * instance does this at start; an embedding recorded twice is ignored the second time.
   */
  onApplicationBootstrap(): void {
    void this.database
      .whenReady()
      .then((ready) => (ready ? this.store.pendingEmbeddings() : []))
      .then(async (pending) => {
        if (!pending.length) return;
        this.log.log(`${pending.length} products waiting for their embedding: embedding them`);
        const results = await Promise.allSettled(pending.map((job) => this.indexProduct(job.productId)));
        const failed = results.filter((r) => r.status === 'rejected').length;
        if (failed) this.log.warn(`${failed} pending products could not be embedded yet; their next event retries`);
      })
      .catch((error: unknown) => this.log.warn(`could not resume pending embeddings: ${(error as Error).message}`));
  }

  /**
   * Stores the product, then embeds it if it waits for its embedding. An unchanged product is embedded too: the
   * upsert may be the redelivery of one whose embedding failed (Azure OpenAI throttled, failing or not allowed), or
   * of one whose instance died between the two steps — nothing else would ever embed it.
   */
  async productUpserted(product: Product, upsertedAt: string): Promise<void> {
    if ((await this.store.upsertProduct(product, upsertedAt)) === 'stale') return;
    await this.indexProduct(product.id);
  }

  async imageAnalyzed(productId: string, imageUrl: string, analysis: ImageAnalysis, at: string): Promise<void> {
    await this.store.recordVision(productId, imageUrl, { analysis }, at);
    await this.indexProduct(productId);
  }

  async imageAnalysisFailed(productId: string, imageUrl: string, failure: string, at: string): Promise<void> {
    await this.store.recordVision(productId, imageUrl, { failure }, at);
    await this.indexProduct(productId);
  }

  async view(id: string): Promise<ProductView> {
    const found = await this.store.view(id);
    if (!found) throw new RpcException({ code: 'not-found', reason: 'product-not-found', message: `No product "${id}".` });
    const { embedded: _embedded, ...view } = found;
    return view;
  }

  async similar(request: SimilarProductsRequest): Promise<RecommendationResult> {
    const { source, hits } = await this.store.similarTo(request.productId, { limit: request.limit, filters: request.filters });
    if (!source) throw new RpcException({ code: 'not-found', reason: 'product-not-found', message: `No product "${request.productId}".` });
    if (!source.embedded) {
      throw new RpcException({ code: 'not-found', reason: 'product-not-indexed', message: `Product "${request.productId}" is not indexed yet (${source.indexing.state}).` });
    }
    const explanation = await this.explanations.explain(hits.map((h) => h.product), { similarTo: source.product });
    return { items: ranked(hits), explanation };
  }

  async recommend(request: RecommendRequest): Promise<RecommendationResult> {
    const [viewed, queryVector] = await Promise.all([
      this.store.products(request.viewedProductIds),
      request.query ? this.embeddings.embed(request.query) : undefined,
    ]);
    const directions = viewed.flatMap((p) => (p.vector ? [p.vector] : []));
    const parts = [...(directions.length ? [centroid(directions)] : []), ...(queryVector ? [queryVector] : [])];
    if (!parts.length) {
      throw new RpcException({ code: 'not-found', reason: 'no-indexed-products', message: 'None of the viewed products is indexed yet, and no query was given.' });
    }
    const hits = await this.store.search({ near: { vector: centroid(parts) }, limit: request.limit, filters: request.filters, exclude: request.viewedProductIds });
    const explanation = await this.explanations.explain(
      hits.map((h) => h.product),
      { ...(request.query ? { query: request.query } : {}), viewed: viewed.map((p) => p.product) },
    );
    return { items: ranked(hits), explanation };
  }

  /** Embeds a product if it waits for its embedding. */
  private async indexProduct(productId: string): Promise<void> {
    const job = await this.store.embeddingJob(productId);
    if (!job) return;
    const vector = await this.embeddings.embed(job.text);
    await this.store.recordEmbedding(productId, job.textHash, vector, 'embeddings');
  }
}

function ranked(hits: readonly CatalogHit[]): RecommendationResult['items'] {
  return hits.map(({ product, score }) => ({ product, score: Math.round(score * 10_000) / 10_000 }));
}
