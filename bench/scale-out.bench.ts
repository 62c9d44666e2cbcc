// Two instances against one: similar-products requests through the whole chain (HTTP at the gateway, the bus, the
// recommendation service ranking in the shared PostgreSQL catalog and asking the local Azure OpenAI chat for the
// explanation) with one recommendation instance, then with a second one added, paired in one run — requests/s and
// latency. On two cores no speed-up is expected (every process shares them); the point is that two instances answer
// correctly from one catalog, and what the second one costs.
//
//   npx nx run-many -t build && npx node bench/scale-out.bench.ts [--requests 1000] [--concurrency 16]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { demoCatalog, freePort, loadCatalog } from '@keyless/launcher';
import { measure } from './support/exact-ranking.ts';
import { startUnthrottledSystem } from './support/unthrottled-system.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '16' } } });
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

const home = mkdtempSync(join(tmpdir(), 'bench-scale-out-'));
const [gatewayPort, imagePort] = [await freePort(), await freePort()];
const catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images` });
const system = await startUnthrottledSystem({ home, gatewayPort, catalog, imagePort });
try {
  const storefront = await system.storefront();
  await loadCatalog(storefront, catalog);
  const ids = catalog.filter((p) => p.product.available).map((p) => p.product.id);
  let failures = 0;
  const similar = async (i: number): Promise<void> => {
    const response = await storefront.fetch(`/v1/products/${ids[i % ids.length]}/similar?limit=5`);
    if (response.status !== 200) failures += 1;
    await response.arrayBuffer();
  };
  for (let i = 0; i < 64; i++) await similar(i);
  const one = await measure(requests, concurrency, similar);
  await system.addInstance('recommendation', 'recommendation-2', await freePort());
  for (let i = 0; i < 64; i++) await similar(i);
  const two = await measure(requests, concurrency, similar);
  await storefront.close();

  console.log(`similar products through the gateway, ${requests} requests at concurrency ${concurrency} (${ids.length} products)`);
  console.log(`${'recommendation instances'.padEnd(26)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
  console.log(`${'1'.padEnd(26)} ${one.perSecond.toFixed(0).padStart(8)} ${one.p50.toFixed(1).padStart(8)} ${one.p99.toFixed(1).padStart(8)}`);
  console.log(`${'2'.padEnd(26)} ${two.perSecond.toFixed(0).padStart(8)} ${two.p50.toFixed(1).padStart(8)} ${two.p99.toFixed(1).padStart(8)}`);
  console.log(`ratio (two / one): ${(two.perSecond / one.perSecond).toFixed(2)}; requests not answered 200: ${failures}`);
  console.log(JSON.stringify({ requests, concurrency, one, two, failures }));
  await system.stop();
  rmSync(home, { recursive: true, force: true });
} catch (error) {
  console.error(`failed; logs kept in ${join(home, 'logs')}`);
  await system.stop();
  throw error;
}
