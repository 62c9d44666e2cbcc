import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ImageAnalysis, Product, ProductView } from '@keyless/contracts';

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

/**
 * The recommendation service's storage: products, their vision results and their embeddings. SQLite is the
 * embedded default for one instance; a scaled-out deployment needs a shared engine behind this interface.
 */
export interface CatalogStore {
  /** Stores a product unless a newer version is already stored (`upsertedAt` decides). */
  upsertProduct(product: Product, upsertedAt: string): UpsertResult;
  /** Stores what vision found for an image (or why it failed), even if the product has not arrived yet. */
  recordVision(productId: string, imageUrl: string, result: { analysis: ImageAnalysis } | { failure: string }, at: string): void;
  /** Stores an embedding computed from the text with `textHash`; ignored if the product changed since. */
  recordEmbedding(productId: string, textHash: string, vector: Float32Array, model: string): boolean;
  /** Marks a product as failed (e.g. its text could not be embedded), with the reason. */
  markFailed(productId: string, error: string): void;
  /** A product with its vision enrichment and indexing state. */
  view(productId: string): ProductView | undefined;
  product(productId: string): Product | undefined;
  /** The embedding job of a product in `pending-embedding`, if it is. */
  embeddingJob(productId: string): EmbeddingJob | undefined;
  /** Every product waiting for its embedding (resumed after a restart). */
  pendingEmbeddings(): EmbeddingJob[];
  /** Every indexed product with its vector (loaded into the vector index at start). */
  indexed(): { product: Product; vector: Float32Array }[];
  counts(): Record<IndexingState, number>;
  close(): void;
}

interface ProductRow {
  id: string;
  data: string;
  upserted_at: string;
  state: IndexingState;
  state_updated_at: string;
  error: string | null;
  text_hash: string | null;
}

/** {@link CatalogStore} in SQLite (`node:sqlite`, WAL): one file, one writer. */
export class SqliteCatalogStore implements CatalogStore {
  private readonly db: DatabaseSync;

  /** @param path database file (created with its folder if missing). */
  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec(`
      PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
      CREATE TABLE IF NOT EXISTS products (
        id TEXT PRIMARY KEY, data TEXT NOT NULL, upserted_at TEXT NOT NULL,
        state TEXT NOT NULL, state_updated_at TEXT NOT NULL, error TEXT, text_hash TEXT);
      CREATE TABLE IF NOT EXISTS vision (
        product_id TEXT PRIMARY KEY, image_url TEXT NOT NULL, analysis TEXT, failure TEXT, at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS embeddings (
        product_id TEXT PRIMARY KEY, text_hash TEXT NOT NULL, vector BLOB NOT NULL, model TEXT NOT NULL);
    `);
  }

  upsertProduct(product: Product, upsertedAt: string): UpsertResult {
    const existing = this.row(product.id);
    if (existing && existing.upserted_at > upsertedAt) return 'stale';
    if (existing && existing.data === JSON.stringify(product)) return 'unchanged';
    this.db
      .prepare('INSERT OR REPLACE INTO products (id, data, upserted_at, state, state_updated_at, error, text_hash) VALUES (?, ?, ?, ?, ?, NULL, ?)')
      .run(product.id, JSON.stringify(product), upsertedAt, 'pending-vision', now(), existing?.text_hash ?? null);
    this.advance(product.id);
    return existing ? 'updated' : 'created';
  }

  recordVision(productId: string, imageUrl: string, result: { analysis: ImageAnalysis } | { failure: string }, at: string): void {
    const current = this.db.prepare('SELECT at FROM vision WHERE product_id = ?').get(productId) as { at: string } | undefined;
    if (current && current.at > at) return;
    this.db
      .prepare('INSERT OR REPLACE INTO vision (product_id, image_url, analysis, failure, at) VALUES (?, ?, ?, ?, ?)')
      .run(productId, imageUrl, 'analysis' in result ? JSON.stringify(result.analysis) : null, 'failure' in result ? result.failure : null, at);
    if (this.row(productId)) this.advance(productId);
  }

  recordEmbedding(productId: string, textHash: string, vector: Float32Array, model: string): boolean {
    const job = this.embeddingJob(productId);
    if (!job || job.textHash !== textHash) return false;
    this.db
      .prepare('INSERT OR REPLACE INTO embeddings (product_id, text_hash, vector, model) VALUES (?, ?, ?, ?)')
      .run(productId, textHash, Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength), model);
    this.setState(productId, 'indexed', null, textHash);
    return true;
  }

  markFailed(productId: string, error: string): void {
    this.setState(productId, 'failed', error);
  }

  product(productId: string): Product | undefined {
    const row = this.row(productId);
    return row ? (JSON.parse(row.data) as Product) : undefined;
  }

  view(productId: string): ProductView | undefined {
    const row = this.row(productId);
    if (!row) return undefined;
    const product = JSON.parse(row.data) as Product;
    const vision = this.visionFor(product);
    return {
      product,
      vision: vision?.analysis ?? null,
      indexing: {
        state: row.state,
        updatedAt: row.state_updated_at,
        ...(row.error ? { error: row.error } : vision?.failure ? { error: `image analysis failed: ${vision.failure}` } : {}),
      },
    };
  }

  embeddingJob(productId: string): EmbeddingJob | undefined {
    const row = this.row(productId);
    if (!row || row.state !== 'pending-embedding') return undefined;
    const product = JSON.parse(row.data) as Product;
    const text = embeddingText(product, this.visionFor(product)?.analysis);
    return { productId, text, textHash: hash(text) };
  }

  pendingEmbeddings(): EmbeddingJob[] {
    const rows = this.db.prepare("SELECT id FROM products WHERE state = 'pending-embedding' ORDER BY upserted_at").all() as { id: string }[];
    return rows.map((row) => this.embeddingJob(row.id)!).filter(Boolean);
  }

  indexed(): { product: Product; vector: Float32Array }[] {
    const rows = this.db
      .prepare("SELECT p.data, e.vector FROM products p JOIN embeddings e ON e.product_id = p.id AND e.text_hash = p.text_hash WHERE p.state = 'indexed'")
      .all() as { data: string; vector: Uint8Array }[];
    return rows.map((row) => ({
      product: JSON.parse(row.data) as Product,
      vector: new Float32Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength)),
    }));
  }

  counts(): Record<IndexingState, number> {
    const counts: Record<IndexingState, number> = { 'pending-vision': 0, 'pending-embedding': 0, indexed: 0, failed: 0 };
    for (const row of this.db.prepare('SELECT state, COUNT(*) AS n FROM products GROUP BY state').all() as { state: IndexingState; n: number }[]) {
      counts[row.state] = row.n;
    }
    return counts;
  }

  close(): void {
    this.db.close();
  }

  /**
   * Moves a product to the state its data allows: an image not yet analysed → `pending-vision`; otherwise
   * `indexed` if its embedding text is unchanged and embedded, else `pending-embedding`.
   */
  private advance(productId: string): void {
    const row = this.row(productId)!;
    const product = JSON.parse(row.data) as Product;
    const vision = this.visionFor(product);
    if (product.imageUrl && !vision) return this.setState(productId, 'pending-vision', null);
    const textHash = hash(embeddingText(product, vision?.analysis));
    const embedded = this.db.prepare('SELECT 1 FROM embeddings WHERE product_id = ? AND text_hash = ?').get(productId, textHash);
    this.setState(productId, embedded ? 'indexed' : 'pending-embedding', null, embedded ? textHash : row.text_hash);
  }

  private setState(productId: string, state: IndexingState, error: string | null, textHash?: string | null): void {
    this.db
      .prepare('UPDATE products SET state = ?, state_updated_at = ?, error = ?, text_hash = COALESCE(?, text_hash) WHERE id = ?')
      .run(state, now(), error, textHash ?? null, productId);
  }

  private visionFor(product: Product): { analysis: ImageAnalysis | null; failure: string | null } | undefined {
    if (!product.imageUrl) return undefined;
    const row = this.db.prepare('SELECT image_url, analysis, failure FROM vision WHERE product_id = ?').get(product.id) as
      | { image_url: string; analysis: string | null; failure: string | null }
      | undefined;
    if (!row || row.image_url !== product.imageUrl) return undefined;
    return { analysis: row.analysis ? (JSON.parse(row.analysis) as ImageAnalysis) : null, failure: row.failure };
  }

  private row(productId: string): ProductRow | undefined {
    return this.db.prepare('SELECT * FROM products WHERE id = ?').get(productId) as ProductRow | undefined;
  }
}

/** The text a product is embedded from: what it is, in words, plus what vision saw in its image. */
export function embeddingText(product: Product, vision?: ImageAnalysis | null): string {
  const parts = [`${product.name}.`, `Category: ${product.category}.`];
  if (product.description) parts.push(product.description);
  if (vision?.caption) parts.push(`Image: ${vision.caption.text}.`);
  if (vision?.tags.length) parts.push(`Tags: ${vision.tags.filter((t) => t.confidence >= 0.5).map((t) => t.name).join(', ')}.`);
  return parts.join(' ');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function now(): string {
  return new Date().toISOString();
}
