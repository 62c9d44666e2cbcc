import { createHash } from 'node:crypto';
import type { PostgresPool, PostgresPoolClient } from '@keyless/auth';
import type { ImageAnalysis, Product, ProductView, RecommendationFilters } from '@keyless/contracts';
import { DatabaseError, inTransaction, runScript, sqlLiteral, type DatabaseSchema } from '@keyless/database';

/** Where a product is: waiting for vision, waiting for its embedding, indexed, or failed. */
export type IndexingState = ProductView['indexing']['state'];

/** What happened when a product was upserted. */
export type UpsertResult = 'created' | 'updated' | 'unchanged' | 'stale';

/** A product due for (re-)embedding: the text to embed and its hash. */
export interface EmbeddingJob {
  productId: string;
  text: string;
  textHash: string;
}

/** A product with the embedding it is ranked by (none before its first embedding). */
export interface EmbeddedProduct {
  product: Product;
  vector?: Float32Array;
}

/** A search hit: the product and its cosine similarity to the query. */
export interface CatalogHit {
  product: Product;
  score: number;
}

/** What a search ranks by, filters on and leaves out. */
export interface CatalogQuery {
  /** Rank by similarity to this vector, or to the embedding of this product. */
  near: { vector: Float32Array } | { productId: string };
  limit: number;
  filters?: RecommendationFilters;
  /** Product ids never returned (the product itself, products already viewed). */
  exclude?: readonly string[];
}

/**
 * The recommendation service's storage, shared by all its instances: products, their vision results and their
 * embeddings, and the search over them.
 */
export interface CatalogStore {
  /** Stores a product unless a newer version is already stored (`upsertedAt` decides; see {@link PostgresCatalogStore}). */
  upsertProduct(product: Product, upsertedAt: string): Promise<UpsertResult>;
  /** Stores what vision found for an image (or why it failed), even if the product has not arrived yet. */
  recordVision(productId: string, imageUrl: string, result: { analysis: ImageAnalysis } | { failure: string }, at: string): Promise<void>;
  /** Stores an embedding computed from the text with `textHash`; false (ignored) if the product changed since. */
  recordEmbedding(productId: string, textHash: string, vector: Float32Array, model: string): Promise<boolean>;
  /** A product with its vision enrichment and indexing state, and whether it has an embedding to rank by. */
  view(productId: string): Promise<(ProductView & { embedded: boolean }) | undefined>;
  /** The products among `ids` that exist, with their embeddings. */
  products(ids: readonly string[]): Promise<EmbeddedProduct[]>;
  /** The embedding job of a product in `pending-embedding`, if it is. */
  embeddingJob(productId: string): Promise<EmbeddingJob | undefined>;
  /** Every product waiting for its embedding (resumed after a restart). */
  pendingEmbeddings(): Promise<EmbeddingJob[]>;
  /** The `limit` most similar available products that pass the filters, best first. */
  search(query: CatalogQuery): Promise<CatalogHit[]>;
  /**
   * The products most similar to product `productId` (excluded), with that product's view, in one round trip; no
   * hits when it does not exist or has no embedding yet.
   */
  similarTo(productId: string, query: Omit<CatalogQuery, 'near'>): Promise<{ source: (ProductView & { embedded: boolean }) | undefined; hits: CatalogHit[] }>;
  counts(): Promise<Record<IndexingState, number>>;
}

/** Tuning of the vector search, in one place. */
export const catalogSearchDefaults = {
  /**
   * Candidates the HNSW graph search keeps (`hnsw.ef_search`, pgvector's default 40) when ranking by a product's own
   * embedding (similar products): it sits among its neighbours, and 100 gives recall@10 ≥ 0.99 on 10,000 products
   * (bench/catalog-search.bench.ts).
   */
  efSearch: 100,
  /**
   * The same for an arbitrary vector (recommend: the centre of viewed products and a query), which may fall between
   * clusters where a narrow graph search stops early: 400 gives recall@10 ≥ 0.95 there, 100 only about 0.85.
   */
  vectorEfSearch: 400,
  /**
   * `hnsw.iterative_scan`: when filters reject candidates, the scan goes on through the graph instead of returning
   * fewer hits. `relaxed_order` may return near-ties slightly out of order (the hits are sorted again);
   * `strict_order` gives up sooner and returned fewer of the exact top 10 in bench/catalog-search.bench.ts.
   */
  iterativeScan: 'relaxed_order' as 'strict_order' | 'relaxed_order',
} as const;

/**
 * The catalog's tables, for `DatabaseModule`. The embedding column has the configured dimensions: a database
 * created with other dimensions is refused at start (`SchemaConflict`), since its vectors cannot be compared.
 */
export function catalogSchema(dimensions: number): DatabaseSchema {
  return {
    name: 'catalog',
    migrations: [
      {
        version: 1,
        description: `products, vision results and ${dimensions}-dimension embeddings with an HNSW cosine index`,
        sql: [
          'CREATE EXTENSION IF NOT EXISTS vector',
          `CREATE TABLE catalog_products (
             id text PRIMARY KEY,
             data jsonb NOT NULL,
             category_key text NOT NULL,
             price numeric NOT NULL,
             available boolean NOT NULL,
             upserted_at timestamptz NOT NULL,
             state text NOT NULL CHECK (state IN ('pending-vision', 'pending-embedding', 'indexed', 'failed')),
             state_updated_at timestamptz NOT NULL,
             error text,
             embedding_text text,
             text_hash text,
             embedding vector(${dimensions}),
             embedded_hash text,
             embedding_model text)`,
          `CREATE TABLE catalog_vision (
             product_id text PRIMARY KEY,
             image_url text NOT NULL,
             analysis jsonb,
             failure text,
             analyzed_at timestamptz NOT NULL)`,
          `CREATE INDEX catalog_products_embedding ON catalog_products
             USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)`,
          `CREATE INDEX catalog_products_pending ON catalog_products (upserted_at) WHERE state = 'pending-embedding'`,
        ],
      },
    ],
    async verify(query) {
      const [column] = await query<{ dimensions: number }>(
        "SELECT atttypmod AS dimensions FROM pg_attribute WHERE attrelid = 'catalog_products'::regclass AND attname = 'embedding'",
      );
      if (column && column.dimensions !== dimensions) {
        throw new DatabaseError(
          'SchemaConflict',
          `The catalog's embeddings have ${column.dimensions} dimensions and EMBEDDINGS_DIMENSIONS is ${dimensions}: vectors of different sizes cannot be ` +
            `compared. Set EMBEDDINGS_DIMENSIONS=${column.dimensions}, or point PGDATABASE at a new database and load the catalog again.`,
        );
      }
    },
  };
}

interface ProductRow {
  data: Product;
  state: IndexingState;
  state_updated_at: Date | string;
  error: string | null;
  embedded: boolean;
  image_url: string | null;
  analysis: ImageAnalysis | null;
  failure: string | null;
}

/** Options of {@link PostgresCatalogStore}. */
export interface PostgresCatalogStoreOptions {
  /** `hnsw.ef_search` of searches near a product. Default: {@link catalogSearchDefaults}.efSearch. */
  efSearch?: number;
  /** `hnsw.ef_search` of searches near a vector. Default: {@link catalogSearchDefaults}.vectorEfSearch. */
  vectorEfSearch?: number;
  /** `hnsw.iterative_scan` of every search. Default: {@link catalogSearchDefaults}.iterativeScan. */
  iterativeScan?: 'strict_order' | 'relaxed_order';
}

/**
 * {@link CatalogStore} in PostgreSQL with pgvector, shared by every instance of the service.
 * Rules:
 * 1. Newer `upsertedAt` wins, in SQL (`INSERT … ON CONFLICT DO UPDATE … WHERE stored < incoming`), so concurrent
 *    writers never regress a product; an equal `upsertedAt` with other data is decided by comparing the data, so
 *    every instance converges on the same version whatever the order.
 * 2. An upsert with unchanged data is `unchanged`, and still records the newer `upsertedAt` (an older change arriving
 *    later must not win against it).
 * 3. The indexing state follows the data, in the transaction that changed it, with the product row locked: an image
 *    not analysed yet → `pending-vision`; else `indexed` if the embedding text is unchanged since the last
 *    embedding, else `pending-embedding` (the text to embed and its hash are stored with the row).
 * 4. A vision result is kept even before its product arrives; the newer `analyzedAt` wins.
 * 5. An embedding is stored only if the product still waits for that exact text (its hash); else it is ignored.
 * 6. Search ranks by cosine distance on the HNSW index (`hnsw.ef_search` set per query, iterative scans so filters
 *    still fill the limit) among available products with an embedding; a product being re-embedded keeps its last
 *    embedding meanwhile. It is one round trip: `BEGIN; SET LOCAL …; SELECT …; COMMIT` in one simple query, its
 *    values written as escaped literals (`sqlLiteral`). Only `SET LOCAL`: no session state.
 */
export class PostgresCatalogStore implements CatalogStore {
  private readonly efSearch: number;
  private readonly vectorEfSearch: number;
  private readonly iterativeScan: 'strict_order' | 'relaxed_order';

  /** @param pool the service's pool (from `@keyless/auth`); {@link catalogSchema} must be applied. */
  constructor(
    private readonly pool: PostgresPool,
    options: PostgresCatalogStoreOptions = {},
  ) {
    this.efSearch = Math.max(1, Math.round(options.efSearch ?? catalogSearchDefaults.efSearch));
    this.vectorEfSearch = Math.max(1, Math.round(options.vectorEfSearch ?? catalogSearchDefaults.vectorEfSearch));
    this.iterativeScan = options.iterativeScan ?? catalogSearchDefaults.iterativeScan;
  }

  upsertProduct(product: Product, upsertedAt: string): Promise<UpsertResult> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ inserted: boolean | null; same: boolean }>(
        `WITH current AS (SELECT data FROM catalog_products WHERE id = $1),
         written AS (
           INSERT INTO catalog_products AS p (id, data, category_key, price, available, upserted_at, state, state_updated_at)
           VALUES ($1, $2::jsonb, lower($3), $4, $5, $6, 'pending-vision', now())
           ON CONFLICT (id) DO UPDATE
             SET data = EXCLUDED.data, category_key = EXCLUDED.category_key, price = EXCLUDED.price,
                 available = EXCLUDED.available, upserted_at = EXCLUDED.upserted_at
             WHERE p.upserted_at < EXCLUDED.upserted_at OR (p.upserted_at = EXCLUDED.upserted_at AND p.data::text < EXCLUDED.data::text)
           RETURNING (xmax = 0) AS inserted)
         SELECT (SELECT inserted FROM written) AS inserted, COALESCE((SELECT data = $2::jsonb FROM current), false) AS same`,
        [product.id, JSON.stringify(product), product.category, product.price, product.available, upsertedAt],
      );
      const { inserted, same } = rows[0]!;
      if (inserted === null) return same ? 'unchanged' : 'stale';
      if (!inserted && same) return 'unchanged';
      await this.advance(client, product.id);
      return inserted ? 'created' : 'updated';
    });
  }

  recordVision(productId: string, imageUrl: string, result: { analysis: ImageAnalysis } | { failure: string }, at: string): Promise<void> {
    return inTransaction(this.pool, async (client) => {
      const written = await client.query(
        `INSERT INTO catalog_vision AS v (product_id, image_url, analysis, failure, analyzed_at) VALUES ($1, $2, $3::jsonb, $4, $5)
         ON CONFLICT (product_id) DO UPDATE
           SET image_url = EXCLUDED.image_url, analysis = EXCLUDED.analysis, failure = EXCLUDED.failure, analyzed_at = EXCLUDED.analyzed_at
           WHERE v.analyzed_at <= EXCLUDED.analyzed_at`,
        [productId, imageUrl, 'analysis' in result ? JSON.stringify(result.analysis) : null, 'failure' in result ? result.failure : null, at],
      );
      if (written.rowCount) await this.advance(client, productId);
    });
  }

  async recordEmbedding(productId: string, textHash: string, vector: Float32Array, model: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE catalog_products
       SET embedding = $3::vector, embedded_hash = $2, embedding_model = $4, state = 'indexed', state_updated_at = now(), error = NULL
       WHERE id = $1 AND state = 'pending-embedding' AND text_hash = $2`,
      [productId, textHash, toVectorLiteral(vector), model],
    );
    return (rowCount ?? 0) > 0;
  }

  async view(productId: string): Promise<(ProductView & { embedded: boolean }) | undefined> {
    const { rows } = await this.pool.query<ProductRow>(`${viewSql} WHERE p.id = $1`, [productId]);
    return rows[0] ? toView(rows[0]) : undefined;
  }

  async products(ids: readonly string[]): Promise<EmbeddedProduct[]> {
    if (!ids.length) return [];
    const { rows } = await this.pool.query<{ id: string; data: Product; embedding: string | null }>(
      'SELECT id, data, embedding::text AS embedding FROM catalog_products WHERE id = ANY($1::text[])',
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.flatMap((id) => {
      const row = byId.get(id);
      if (!row) return [];
      return [{ product: row.data, ...(row.embedding ? { vector: Float32Array.from(JSON.parse(row.embedding) as number[]) } : {}) }];
    });
  }

  async embeddingJob(productId: string): Promise<EmbeddingJob | undefined> {
    const { rows } = await this.pool.query<{ text: string; text_hash: string }>(
      "SELECT embedding_text AS text, text_hash FROM catalog_products WHERE id = $1 AND state = 'pending-embedding'",
      [productId],
    );
    return rows[0] ? { productId, text: rows[0].text, textHash: rows[0].text_hash } : undefined;
  }

  async pendingEmbeddings(): Promise<EmbeddingJob[]> {
    const { rows } = await this.pool.query<{ id: string; text: string; text_hash: string }>(
      "SELECT id, embedding_text AS text, text_hash FROM catalog_products WHERE state = 'pending-embedding' ORDER BY upserted_at",
    );
    return rows.map((row) => ({ productId: row.id, text: row.text, textHash: row.text_hash }));
  }

  async search(query: CatalogQuery): Promise<CatalogHit[]> {
    const near = query.near;
    const [target, efSearch] = 'vector' in near ? [sqlLiteral.vector(near.vector), this.vectorEfSearch] : [embeddingOf(near.productId), this.efSearch];
    const [, , , hits] = await runScript<{ data: Product; score: number }>(this.pool, this.searchScript(target, efSearch, query));
    return toHits(hits!.rows);
  }

  async similarTo(productId: string, query: Omit<CatalogQuery, 'near'>): Promise<{ source: (ProductView & { embedded: boolean }) | undefined; hits: CatalogHit[] }> {
    const exclude = [productId, ...(query.exclude ?? []).filter((id) => id !== productId)];
    const [, , , source, hits] = await runScript(
      this.pool,
      this.searchScript(embeddingOf(productId), this.efSearch, { ...query, exclude }, `${viewSql} WHERE p.id = ${sqlLiteral.text(productId)};`),
    );
    const row = source!.rows[0] as ProductRow | undefined;
    return { source: row ? toView(row) : undefined, hits: toHits(hits!.rows as { data: Product; score: number }[]) };
  }

  /**
   * The search as one round trip: `BEGIN; SET LOCAL …; [before;] SELECT …; COMMIT` in one simple query, values
   * written as escaped literals (the simple protocol takes no parameters). The SET LOCALs hold for this transaction
   * only. Iterative scans keep walking the HNSW graph while filters reject candidates (pgvector ≥ 0.8); the hits are
   * sorted again in case of relaxed order. The target is checked for NULL (a product without embedding): distances
   * to NULL would order nothing.
   */
  private searchScript(target: string, efSearch: number, query: Omit<CatalogQuery, 'near'>, before = ''): string {
    const where = ['embedding IS NOT NULL', 'available', `${target} IS NOT NULL`];
    if (query.exclude?.length) where.push(`id <> ALL(${sqlLiteral.textArray(query.exclude)})`);
    const { category, minPrice, maxPrice } = query.filters ?? {};
    if (category !== undefined) where.push(`category_key = lower(${sqlLiteral.text(category)})`);
    if (minPrice !== undefined) where.push(`price >= ${sqlLiteral.number(minPrice)}`);
    if (maxPrice !== undefined) where.push(`price <= ${sqlLiteral.number(maxPrice)}`);
    return `BEGIN; SET LOCAL hnsw.ef_search = ${sqlLiteral.integer(efSearch)}; SET LOCAL hnsw.iterative_scan = ${this.iterativeScan}; ${before}
      SELECT data, 1 - (embedding <=> ${target}) AS score FROM catalog_products
      WHERE ${where.join(' AND ')} ORDER BY embedding <=> ${target} LIMIT ${sqlLiteral.integer(query.limit)};
      COMMIT`;
  }

  async counts(): Promise<Record<IndexingState, number>> {
    const counts: Record<IndexingState, number> = { 'pending-vision': 0, 'pending-embedding': 0, indexed: 0, failed: 0 };
    const { rows } = await this.pool.query<{ state: IndexingState; n: number }>('SELECT state, count(*)::int AS n FROM catalog_products GROUP BY state');
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  /** Rule 3: moves a product (row locked) to the state its data and vision result allow. */
  private async advance(client: PostgresPoolClient, productId: string): Promise<void> {
    const { rows } = await client.query<{ data: Product; embedded_hash: string | null; image_url: string | null; analysis: ImageAnalysis | null; failure: string | null }>(
      `SELECT p.data, p.embedded_hash, v.image_url, v.analysis, v.failure
       FROM catalog_products p LEFT JOIN catalog_vision v ON v.product_id = p.id WHERE p.id = $1 FOR UPDATE OF p`,
      [productId],
    );
    const row = rows[0];
    if (!row) return;
    const vision = visionOf(row.data, row);
    let state: IndexingState = 'pending-vision';
    let text: string | null = null;
    let textHash: string | null = null;
    if (!row.data.imageUrl || vision) {
      text = embeddingText(row.data, vision?.analysis);
      textHash = hash(text);
      state = row.embedded_hash === textHash ? 'indexed' : 'pending-embedding';
    }
    await client.query(
      'UPDATE catalog_products SET state = $2, state_updated_at = now(), error = NULL, embedding_text = $3, text_hash = $4 WHERE id = $1',
      [productId, state, text, textHash],
    );
  }
}

/** A product with its vision result and indexing state (add the `WHERE`). */
const viewSql = `SELECT p.data, p.state, p.state_updated_at, p.error, p.embedding IS NOT NULL AS embedded, v.image_url, v.analysis, v.failure
  FROM catalog_products p LEFT JOIN catalog_vision v ON v.product_id = p.id`;

function toView(row: ProductRow): ProductView & { embedded: boolean } {
  const vision = visionOf(row.data, row);
  return {
    product: row.data,
    vision: vision?.analysis ?? null,
    indexing: {
      state: row.state,
      updatedAt: new Date(row.state_updated_at).toISOString(),
      ...(row.error ? { error: row.error } : vision?.failure ? { error: `image analysis failed: ${vision.failure}` } : {}),
    },
    embedded: row.embedded,
  };
}

/**
 * A product's embedding as a scalar subquery: PostgreSQL evaluates it once (an InitPlan), so the HNSW index can order
 * by distance to it.
 */
function embeddingOf(productId: string): string {
  return `(SELECT embedding FROM catalog_products WHERE id = ${sqlLiteral.text(productId)})`;
}

function toHits(rows: readonly { data: Product; score: number }[]): CatalogHit[] {
  return rows.map((row) => ({ product: row.data, score: Number(row.score) })).sort((a, b) => b.score - a.score || a.product.id.localeCompare(b.product.id));
}

/** The vision result of the product's current image, if vision analysed that image. */
function visionOf(product: Product, row: { image_url: string | null; analysis: ImageAnalysis | null; failure: string | null }): { analysis: ImageAnalysis | null; failure: string | null } | undefined {
  if (!product.imageUrl || row.image_url !== product.imageUrl) return undefined;
  return { analysis: row.analysis, failure: row.failure };
}

/** The text a product is embedded from: what it is, in words, plus what vision saw in its image. */
export function embeddingText(product: Product, vision?: ImageAnalysis | null): string {
  const parts = [`${product.name}.`, `Category: ${product.category}.`];
  if (product.description) parts.push(product.description);
  if (vision?.caption) parts.push(`Image: ${vision.caption.text}.`);
  if (vision?.tags.length) parts.push(`Tags: ${vision.tags.filter((t) => t.confidence >= 0.5).map((t) => t.name).join(', ')}.`);
  return parts.join(' ');
}

/** pgvector's text form of a vector: `[0.1,0.2,…]`. */
function toVectorLiteral(vector: Float32Array): string {
  return `[${Array.prototype.join.call(vector, ',')}]`;
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
