import { readFileSync } from 'node:fs';
import { indexingState, serviceNames, waitFor } from '@keyless/launcher';
import { useRunningSystem } from './support/running-system.js';

/**
 * Docker sends SIGKILL 10 s after SIGTERM (`docker stop`, `docker compose down`); a service stops within 8 s by
 * design (`stopBounds` of @keyless/observability). Measured from the signal to the process's exit, as the platform
 * sees it.
 */
const stopBoundInMs = 8_000;

type Exit = { name: string; code: number | null; signal: NodeJS.Signals | null; tookInMs: number };

// Each service is signalled after the local Azure (Service Bus, the token endpoint, PostgreSQL, OpenAI, Vision) was
// killed under traffic: what a service still had in flight cannot finish, and the stop must end anyway — within its
// bound, with exit code 0 and a line saying what was cut short — and lose nothing: once the local Azure and the
// services run again, every product upsert the gateway accepted before the kill is indexed.
describe('Keyless services, stopped after the local Azure is gone', () => {
  const e2e = useRunningSystem({ name: 'stop', loadCatalog: false });

  it('exits within its bound with code 0, says what it cut short, and loses no accepted upsert', async () => {
    const { system, storefront, catalog } = e2e;
    const accepted = new Set<string>();
    let upserting = true;
    const upserts = Promise.all(
      catalog.map(async ({ product }, i) => {
        // Spread over the kill: some are handled, some in flight at vision or recommendation, some refused.
        await new Promise((resolve) => setTimeout(resolve, i * 40));
        if (!upserting) return;
        const { id, ...body } = product;
        const response = await storefront.fetch(`/v1/products/${id}`, { method: 'PUT', body: JSON.stringify(body) }).catch(() => undefined);
        await response?.arrayBuffer();
        if (response?.status === 202) accepted.add(id);
      }),
    );
    await waitFor(() => accepted.size >= 8, 30_000, () => `only ${accepted.size} upserts accepted before the kill`);

    const localAzure = system.processes.get('local-azure')!;
    localAzure.child.kill('SIGKILL');
    await localAzure.exited;
    upserting = false;
    // Callers waiting at the gateway for answers that cannot come (no Service Bus): its drain must not wait them out.
    const waiting = Array.from({ length: 3 }, () => storefront.fetch(`/v1/products/${catalog[0]!.product.id}`).then((r) => r.arrayBuffer(), () => undefined));
    await waitFor(
      async () => ((await fetch(`${system.gatewayUrl}/health/ready`).catch(() => undefined))?.status ?? 0) === 503,
      10_000,
      () => 'the gateway never noticed the local Azure was gone',
    );

    const exits = await Promise.all(
      serviceNames.map(async (name): Promise<Exit> => {
        const child = system.processes.get(name)!.child;
        const exited = new Promise<Omit<Exit, 'tookInMs' | 'name'>>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
        const signalled = performance.now();
        child.kill('SIGTERM');
        // Past the bound (and docker's 10 s), the platform would have ended it: so does the test, after 20 s.
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const exit = await exited;
        clearTimeout(killer);
        return { name, ...exit, tookInMs: Math.round(performance.now() - signalled) };
      }),
    );
    await Promise.all([upserts, ...waiting]);
    for (const name of serviceNames) await system.processes.get(name)!.exited;

    expect(exits.filter((exit) => exit.code !== 0 || exit.tookInMs >= stopBoundInMs)).toEqual([]);
    const gatewayLog = readFileSync(system.processes.get('gateway')!.logFile, 'utf8');
    expect(gatewayLog).toMatch(/HTTP requests still unanswered after 4000 ms: closing their connections/);

    // Nothing lost: what the services had not settled is still on the (persistent) broker and is delivered again.
    await system.restartLocalAzure();
    for (const name of serviceNames) await system.restartService(name);
    const pending = new Set(accepted);
    await waitFor(
      async () => {
        for (const id of pending) if ((await indexingState(storefront, id).catch(() => 'unavailable')) === 'indexed') pending.delete(id);
        return pending.size === 0;
      },
      120_000,
      () => `accepted upserts not indexed after the restart: ${[...pending].join(', ')}`,
      1_000,
    );
  }, 300_000);
});
