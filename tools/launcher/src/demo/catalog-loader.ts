import { join } from 'node:path';
import { commandForHome, type LocalAzureHomeRef } from '@keyless/contracts';
import type { DemoProduct } from './demo-catalog.js';
import { callPatiently, type GatewayCaller, type PatientGatewayOptions, type TaskProgress } from '../patient-gateway.js';
import { waitFor } from '../processes.js';
import { Progress, silent } from '../progress.js';

const defaults = {
  /** Concurrent requests while loading the catalog and polling its indexing. */
  concurrency: 8,
  indexingTimeoutInMs: 300_000,
};

/**
 * How {@link loadCatalog} waits out a gateway whose services are still catching up, how it is stopped, and the home its
 * failures name.
 */
export interface LoadCatalogOptions extends PatientGatewayOptions {
  /**
   * The local Azure home the system runs on: a failure names its logs folder and the `npm start` to run again as it must
   * be typed for it (`LOCAL_AZURE_HOME=<home> npm start` for any other home than the default one).
   * **Default:** none — `LOCAL_AZURE_HOME/logs` and `npm start`.
   */
  home?: LocalAzureHomeRef;
}

/** What the failures of a task on `home` tell the user: where the logs are, and how to start again. */
export function failureAdvice(home: LocalAzureHomeRef | undefined): { logs: string; start: string } {
  return home ? { logs: join(home.root, 'logs'), start: commandForHome('npm start', home) } : { logs: 'LOCAL_AZURE_HOME/logs', start: 'npm start' };
}

export type { GatewayCaller };

/**
 * Loads the demo catalog through the gateway, then waits until every product is indexed, showing progress
 * for both. A second start finds the products there and only re-sends those that are not indexed (an
 * upsert nudges vision and recommendation again), so it is quick. A gateway still catching up (503, 504) is
 * waited out within bounds (see {@link LoadCatalogOptions}), with a line saying what is retried and why.
 */
export async function loadCatalog(
  storefront: GatewayCaller,
  catalog: readonly DemoProduct[],
  progress: Progress = new Progress(silent),
  options: LoadCatalogOptions = {},
): Promise<void> {
  const advice = failureAdvice(options.home);
  await callPatiently(storefront, progress, options, { name: 'the load', rerun: `run \`${advice.start}\` again (it sends only what is not loaded yet)`, logs: advice.logs }, (gateway, shown, signal) =>
    loadAndIndex(gateway, catalog, shown, signal, advice),
  );
}

async function loadAndIndex(gateway: GatewayCaller, catalog: readonly DemoProduct[], progress: TaskProgress, signal: AbortSignal, advice: { logs: string; start: string }): Promise<void> {
  const states = new Map<string, string>();
  await inBatches(catalog, defaults.concurrency, async ({ product }) => {
    states.set(product.id, await indexingState(gateway, product.id, advice));
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
    // An upsert: sending it again after a 504 is safe.
    const response = await gateway.fetch(`/v1/products/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(body) });
    if (response.status !== 202) throw new Error(await unexpectedAnswer(`PUT /v1/products/${id}`, response, advice));
    await response.arrayBuffer();
    progress.count(++sent, toSend.length);
  });
  progress.done();

  progress.step('Indexing (vision tags, embeddings)');
  const pending = new Set(toSend.map(({ product }) => product.id));
  let failed = 0;
  await waitFor(
    async () => {
      await inBatches([...pending], defaults.concurrency, async (id) => {
        const state = await indexingState(gateway, id, advice);
        if (state === 'indexed' || state === 'failed') {
          pending.delete(id);
          if (state === 'failed') failed++;
        }
      });
      progress.count(toSend.length - pending.size, toSend.length);
      return pending.size === 0;
    },
    defaults.indexingTimeoutInMs,
    () => `${pending.size} products were still not indexed after ${defaults.indexingTimeoutInMs / 1000} s (see the logs in ${advice.logs})`,
    2000,
    signal,
  );
  progress.done(failed ? `${failed} failed` : undefined);
}

/** A product's indexing state through the gateway, or `missing`; a failure names `advice` (default: {@link failureAdvice} of no home). */
export async function indexingState(storefront: GatewayCaller, id: string, advice = failureAdvice(undefined)): Promise<string> {
  const response = await storefront.fetch(`/v1/products/${encodeURIComponent(id)}`);
  if (response.status === 404) {
    await response.arrayBuffer();
    return 'missing';
  }
  if (response.status !== 200) throw new Error(await unexpectedAnswer(`GET /v1/products/${id}`, response, advice));
  return ((await response.json()) as { indexing: { state: string } }).indexing.state;
}

async function unexpectedAnswer(request: string, response: Response, advice: { logs: string; start: string }): Promise<string> {
  return `${request} answered ${response.status}: ${await response.text()}\nCheck the gateway's log in ${advice.logs}, then run \`${advice.start}\` again.`;
}

export async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}
