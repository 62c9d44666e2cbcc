import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { failureAdvice, inBatches, type LoadCatalogOptions } from './demo/catalog-loader.js';
import { callPatiently, type GatewayCaller } from './patient-gateway.js';
import type { Progress } from './progress.js';

const defaults = {
  /** Concurrent upserts, as the demo catalog's loader sends them. */
  concurrency: 8,
  /** Refusals named one by one in the summary line; the rest are counted. */
  refusalsShown: 5,
};

/**
 * The folder where the releases before the catalog moved into PostgreSQL kept it under `npm start`: the
 * recommendation service's data folder in the home (its `RECOMMENDATION_DATA_DIR`), holding `catalog.db` (SQLite).
 * The services no longer read it.
 */
export function earlierCatalogFolder(home: string): string {
  return join(home, 'apps', 'recommendation');
}

/** Whether the home holds an earlier release's catalog, still to be carried over. */
export function hasEarlierCatalog(home: string): boolean {
  return existsSync(join(earlierCatalogFolder(home), 'catalog.db'));
}

/**
 * Where {@link carryOverEarlierCatalog} moves that folder once its products are in the PostgreSQL catalog:
 * `apps/recommendation.carried-over`, or, when that is taken (an earlier carry-over of a second old home copied in, or
 * a folder the user restored), the first of `.carried-over-2`, `.carried-over-3`, … that is not.
 */
export function carriedOverCatalogFolder(home: string): string {
  const base = `${earlierCatalogFolder(home)}.carried-over`;
  if (!existsSync(base)) return base;
  let n = 2;
  while (existsSync(`${base}-${n}`)) n++;
  return `${base}-${n}`;
}

/**
 * Carries the products of an earlier release's catalog (`apps/recommendation/catalog.db` in the home) over into the
 * catalog the services keep in PostgreSQL, by upserting each through the gateway as the demo catalog is loaded (the
 * services then analyse and index them again), and moves the old folder aside so the next start does not send them
 * again (see {@link carriedOverCatalogFolder} for where; the line it prints names it). Products whose ids are in
 * `skip` (the demo catalog's, loaded afresh with today's image URLs) are left to it. Does nothing when the home holds
 * no earlier catalog.
 *
 * Rules:
 * - a gateway still catching up (503, 504, a refused or reset connection) is waited out within the bounds of
 *   `options`, with a line saying what is retried and why, as the demo catalog's load does (see {@link callPatiently});
 * - an upsert the gateway refuses (the product no longer passes validation) is named in the summary and not retried;
 * - any other failure, or transient ones past those bounds, stops the start with the reason, and leaves the folder in
 *   place: the next start tries again (an upsert of the same product is idempotent);
 * - aborting `options.signal` ends it at once (requests in flight cancelled, waits ended, nothing more printed), the
 *   folder left in place; it rejects with the signal's reason.
 */
export async function carryOverEarlierCatalog(
  home: string,
  storefront: GatewayCaller,
  progress: Progress,
  skip: ReadonlySet<string> = new Set(),
  options: LoadCatalogOptions = {},
): Promise<void> {
  if (!hasEarlierCatalog(home)) return;
  const folder = earlierCatalogFolder(home);
  const file = join(folder, 'catalog.db');
  const stored = readProducts(file);
  const products = stored.filter(({ id }) => !skip.has(id));
  const refused: string[] = [];
  if (products.length) {
    let sent = 0;
    try {
      // Its failures name `home` (its logs folder, the start command for it) unless told whether it is the default one.
      const advice = failureAdvice(options.home ?? { root: home, isDefault: false });
      await callPatiently(storefront, progress, options, { name: 'the carry-over', rerun: `run \`${advice.start}\` again`, logs: advice.logs }, async (gateway, shown) => {
        shown.step(`Carrying over ${products.length === 1 ? 'the product' : `${products.length} products`} of the catalog an earlier version kept in ${file}`);
        await inBatches(products, defaults.concurrency, async ({ id, body }) => {
          const response = await gateway.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
          if (response.status === 400) refused.push(`${id} (${((await response.json()) as { errors?: { message: string }[] }).errors?.map((e) => e.message).join('; ') ?? 'refused'})`);
          else if (response.status !== 202) throw new Error(`PUT /v1/products/${id} answered ${response.status}: ${await response.text()}`);
          else await response.arrayBuffer();
          shown.count(++sent, products.length);
        });
        shown.done();
      });
    } catch (error) {
      // Stopped (Ctrl-C): the stop is the reason, and the carry-over says nothing more.
      options.signal?.throwIfAborted();
      const reason = (error as Error).message;
      throw new Error(`Carrying over the catalog of ${file} stopped: ${reason}${reason.endsWith('.') ? '' : '.'} It is kept, and carried over again at the next start.`, { cause: error });
    }
  }
  // Never onto a folder already there: renaming onto an empty one would replace it, onto any other fails.
  const kept = carriedOverCatalogFolder(home);
  renameSync(folder, kept);
  const shown = refused.slice(0, defaults.refusalsShown).join(', ') + (refused.length > defaults.refusalsShown ? `, and ${refused.length - defaults.refusalsShown} more` : '');
  progress.line(
    `The catalog is in PostgreSQL now: ${productCount(products.length - refused.length)} of the earlier ${file} upserted into it (indexed in the background)` +
      `${refused.length ? `; the gateway refused ${shown}` : ''}${stored.length > products.length ? `; its demo products (${stored.length - products.length}) come with the demo catalog` : ''}. ` +
      `The old files are kept in ${kept} (delete it when you no longer need it).`,
  );
}

/** `1 product`, `2 products`. */
function productCount(count: number): string {
  return `${count} product${count === 1 ? '' : 's'}`;
}

/** The products of an earlier release's `catalog.db`: each row's id and its product JSON without the id (an upsert's body). */
function readProducts(file: string): { id: string; body: Record<string, unknown> }[] {
  // Opened for writing: a store left by `kill -9` has its last commits in the WAL file, which only a writer replays.
  const db = new DatabaseSync(file);
  try {
    const rows = db.prepare('SELECT id, data FROM products ORDER BY id').all() as { id: string; data: string }[];
    return rows.map(({ id, data }) => {
      const body = JSON.parse(data) as Record<string, unknown>;
      delete body.id;
      return { id, body };
    });
  } finally {
    db.close();
  }
}
