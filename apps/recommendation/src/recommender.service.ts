import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import type { ImageAnalysis, Product, ProductView, RecommendationResult, RecommendRequest, SimilarProductsRequest } from '@keyless/contracts';
import { CATALOG_STORE } from './catalog/catalog.module-tokens.js';
import type { CatalogStore } from './catalog/catalog.store.js';
import { EmbeddingsService } from './ai/embeddings.service.js';
import { ExplanationsService } from './ai/explanations.service.js';
import { centroid, VectorIndex } from './index/vector-index.js';

/**
 * The recommendation service's core: keeps the catalog and the vector index in step (embedding products
 * when their text or vision tags change) and answers similar-product and shopper queries.
 */
@Injectable()
export class RecommenderService implements OnApplicationBootstrap {
  private readonly log = new Logger(RecommenderService.name);
  private readonly index = new VectorIndex();

  constructor(
    @Inject(CATALOG_STORE) private readonly store: CatalogStore,
    private readonly embeddings: EmbeddingsService,
    private readonly explanations: ExplanationsService,
  ) {}

  /** Loads indexed products, then embeds what was left pending (in the background: the app is ready). */
  onApplicationBootstrap(): void {
    for (const { product, vector } of this.store.indexed()) this.index.set(product, vector);
    const pending = this.store.pendingEmbeddings();
    this.log.log(`vector index loaded: ${this.index.size} products; ${pending.length} waiting for their embedding`);
    void Promise.allSettled(pending.map((job) => this.indexProduct(job.productId))).then((results) => {
      const failed = results.filter((r) => r.status === 'rejected').length;
      if (failed) this.log.warn(`${failed} pending products could not be embedded yet; their next event retries`);
    });
  }

  /**
   * Stores the product and embeds it if it waits for that. An unchanged product is embedded too: the upsert may be
   * the redelivery of one whose embedding failed (Azure OpenAI throttled, failing or not allowed), and nothing else
   * would ever embed it.
   */
  async productUpserted(product: Product, upsertedAt: string): Promise<void> {
    const result = this.store.upsertProduct(product, upsertedAt);
    if (result === 'stale') return;
    if (result !== 'unchanged') this.index.updateProduct(product);
    await this.indexProduct(product.id);
  }

  async imageAnalyzed(productId: string, imageUrl: string, analysis: ImageAnalysis, at: string): Promise<void> {
    this.store.recordVision(productId, imageUrl, { analysis }, at);
    await this.indexProduct(productId);
  }

  async imageAnalysisFailed(productId: string, imageUrl: string, failure: string, at: string): Promise<void> {
    this.store.recordVision(productId, imageUrl, { failure }, at);
    await this.indexProduct(productId);
  }

  view(id: string): ProductView {
    const view = this.store.view(id);
    if (!view) throw new RpcException({ code: 'not-found', reason: 'product-not-found', message: `No product "${id}".` });
    return view;
  }

  async similar(request: SimilarProductsRequest): Promise<RecommendationResult> {
    const product = this.view(request.productId).product;
    const vector = this.index.vectorOf(product.id);
    if (!vector) {
      throw new RpcException({ code: 'not-found', reason: 'product-not-indexed', message: `Product "${product.id}" is not indexed yet (${this.store.view(product.id)!.indexing.state}).` });
    }
    const hits = this.index.search({ vector, limit: request.limit, filters: request.filters, exclude: new Set([product.id]) });
    const explanation = await this.explanations.explain(hits.map((h) => h.product), { similarTo: product });
    return { items: hits.map(({ product: p, score }) => ({ product: p, score: round(score) })), explanation };
  }

  async recommend(request: RecommendRequest): Promise<RecommendationResult> {
    const viewed = request.viewedProductIds.map((id) => this.store.product(id)).filter((p): p is Product => !!p);
    const directions = viewed.map((p) => this.index.vectorOf(p.id)).filter((v): v is Float32Array => !!v);
    const parts = [...(directions.length ? [centroid(directions)] : []), ...(request.query ? [await this.embeddings.embed(request.query)] : [])];
    if (!parts.length) {
      throw new RpcException({ code: 'not-found', reason: 'no-indexed-products', message: 'None of the viewed products is indexed yet, and no query was given.' });
    }
    const hits = this.index.search({ vector: centroid(parts), limit: request.limit, filters: request.filters, exclude: new Set(request.viewedProductIds) });
    const explanation = await this.explanations.explain(
      hits.map((h) => h.product),
      { ...(request.query ? { query: request.query } : {}), viewed },
    );
    return { items: hits.map(({ product, score }) => ({ product, score: round(score) })), explanation };
  }

  /** Embeds a product if it waits for its embedding, and puts it in the index. */
  private async indexProduct(productId: string): Promise<void> {
    const job = this.store.embeddingJob(productId);
    if (!job) return;
    const vector = await this.embeddings.embed(job.text);
    if (this.store.recordEmbedding(productId, job.textHash, vector, 'embeddings')) {
      this.index.set(this.store.product(productId)!, vector);
    }
  }
}

function round(score: number): number {
  return Math.round(score * 10_000) / 10_000;
}
