import type { DemoProduct } from './demo-catalog.js';
import { waitFor } from '../processes.js';
import { Progress, silent } from '../progress.js';
import type { StorefrontCaller } from '../storefront-caller.js';

const defaults = {
  /** Concurrent requests while loading the catalog and polling its indexing. */
  concurrency: 8,
  indexingTimeoutInMs: 300_000,
};

/**
 * Loads the demo catalog through the gateway, then waits until every product is indexed, showing progress
 * for both. A second start finds the products there and only re-sends those that are not indexed (an
 * upsert nudges vision and recommendation again), so it is quick.
 */
export async function loadCatalog(storefront: StorefrontCaller, catalog: readonly DemoProduct[], progress: Progress = new Progress(silent)): Promise<void> {
  const states = new Map<string, string>();
  await inBatches(catalog, defaults.concurrency, async ({ product }) => {
    states.set(product.id, await indexingState(storefront, product.id));
  });
  const toSend = catalog.filter(({ product }) => states.get(product.id) !== 'indexed');
  if (toSend.length === 0) {
    progress.line(`Demo catalog loaded and indexed (${catalog.length} products).`);
    return;
  }
  let sent = 0;
  progress.step(toSend.length === catalog.length ? `Loading the demo catalog (${catalog.length} products)` : `Re-sending ${toSend.length} products that are not indexed yet`);
  await inBatches(toSend, defaults.concurrency, async ({ product }) => {
    const { id, ...body } = product;
    const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
    if (response.status !== 202) throw new Error(`PUT /v1/products/${id} answered ${response.status}: ${await response.text()}`);
    progress.count(++sent, toSend.length);
  });
  progress.done();

  progress.step('Indexing (vision tags, embeddings)');
  const pending = new Set(toSend.map(({ product }) => product.id));
  let failed = 0;
  await waitFor(
    async () => {
      await inBatches([...pending], defaults.concurrency, async (id) => {
        const state = await indexingState(storefront, id);
        if (state === 'indexed' || state === 'failed') {
          pending.delete(id);
          if (state === 'failed') failed++;
        }
      });
      progress.count(toSend.length - pending.size, toSend.length);
      return pending.size === 0;
    },
    defaults.indexingTimeoutInMs,
    () => `${pending.size} products were still not indexed after ${defaults.indexingTimeoutInMs / 1000} s (see the logs in LOCAL_AZURE_HOME/logs)`,
    2000,
  );
  progress.done(failed ? `${failed} failed` : undefined);
}

/** A product's indexing state through the gateway, or `missing`. */
export async function indexingState(storefront: StorefrontCaller, id: string): Promise<string> {
  const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`);
  if (response.status === 404) return 'missing';
  if (response.status !== 200) throw new Error(`GET /v1/products/${id} answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { indexing: { state: string } }).indexing.state;
}

export async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

