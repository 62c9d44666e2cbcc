// End-to-end ingestion through the running system: N products PUT at the gateway (catalog events), each image analysed
// by vision (its event), each product embedded by recommendation with the local Azure OpenAI and stored in the
// shared PostgreSQL catalog, until every product reads back `indexed` through the gateway — in products/s.
//
//   npx nx run-many -t build && npx node bench/ingestion.bench.ts [--products 10000]
//
// The local Azure (Service Bus, OpenAI, Vision, PostgreSQL), the gateway, recommendation and vision run as separate
// processes, as `npm start` runs them, and share the two cores with this load generator.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { demoCatalog, freePort, inBatches, indexingState } from '@keyless/launcher';
import { startUnthrottledSystem } from './support/unthrottled-system.ts';

const { values } = parseArgs({ options: { products: { type: 'string', default: '10000' } } });
const productCount = Number(values.products);
/** PUTs in flight, as the launcher loads the demo catalog. */
const sendConcurrency = 8;

const home = mkdtempSync(join(tmpdir(), 'bench-ingestion-'));
const [gatewayPort, imagePort] = [await freePort(), await freePort()];
const types = demoCatalog({ imageBaseUrl: 'http://127.0.0.1:9/images', variantsPerType: 1 }).length;
const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images`, variantsPerType: Math.ceil(productCount / types) }).slice(0, productCount);
const system = await startUnthrottledSystem({ home, gatewayPort, catalog, imagePort });
try {
  const storefront = await system.storefront();
  const started = performance.now();
  await inBatches(catalog, sendConcurrency, async ({ product: { id, ...body } }) => {
    const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
    if (response.status !== 202) throw new Error(`PUT /v1/products/${id} answered ${response.status}: ${await response.text()}`);
  });
  // Read back through the gateway in the order sent, a few at the head of the queue at a time: products flow through
  // about in that order, so polling costs about one GET per product instead of one per pending product per pass.
  const pending = catalog.map(({ product }) => product.id);
  const deadline = Date.now() + 60_000 + 100 * productCount;
  let failed = 0;
  while (pending.length) {
    const head = pending.slice(0, sendConcurrency);
    const states = await Promise.all(head.map((id) => indexingState(storefront, id)));
    const done = new Set(head.filter((_, i) => states[i] === 'indexed' || states[i] === 'failed'));
    failed += states.filter((state) => state === 'failed').length;
    for (let i = pending.length - 1; i >= 0; i--) if (done.has(pending[i]!)) pending.splice(i, 1);
    if (done.size) continue;
    if (Date.now() > deadline) throw new Error(`${pending.length} products not indexed in time, e.g. ${pending[0]}: ${states[0]}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  await storefront.close();
  const perSecond = Math.round((productCount / seconds) * 10) / 10;
  console.log(`ingestion: ${productCount} products upserted → analysed → embedded → indexed in ${seconds.toFixed(1)} s: ${perSecond} products/s (${failed} failed)`);
  console.log(JSON.stringify({ products: productCount, seconds: Math.round(seconds * 10) / 10, productsPerSecond: perSecond, failed }));
  await system.stop();
  rmSync(home, { recursive: true, force: true });
} catch (error) {
  console.error(`failed; logs kept in ${join(home, 'logs')}`);
  await system.stop();
  throw error;
}
