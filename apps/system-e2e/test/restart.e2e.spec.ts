import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoCatalog, freePort, loadCatalog, localAzureStatus, serviceNames, startSystem, waitFor, type DemoProduct, type RunningSystem, type StorefrontCaller } from '@keyless/launcher';

// The running system survives a SIGKILL of the local Azure: the launcher starts the local Azure again on the
// same home, the three services are not restarted, and they find it again by themselves — same endpoints,
// same tenant and keys, same CA. Every product upsert the gateway accepted (the event was acknowledged by
// the bus) before, during or after the outage ends up indexed.
describe('Keyless, after the local Azure is killed and started again', () => {
  let system: RunningSystem;
  let storefront: StorefrontCaller;
  let catalog: DemoProduct[];
  const scratch = mkdtempSync(join(tmpdir(), 'keyless-restart-e2e-'));

  beforeAll(async () => {
    const [gatewayPort, imagePort] = [await freePort(), await freePort()];
    catalog = demoCatalog({ imageBaseUrl: `http://127.0.0.1:${imagePort}/images`, variantsPerType: 1 });
    system = await startSystem({ home: join(scratch, 'state'), gatewayPort, images: { products: catalog, port: imagePort }, serviceEnv: { gateway: { REQUEST_TIMEOUT_MS: '4000' } } });
    storefront = await system.storefront();
    await loadCatalog(storefront, catalog);
  }, 240_000);

  afterAll(async () => {
    await storefront?.close();
    await system?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('keeps serving with the same service processes, and indexes every upsert the gateway accepted', async () => {
    const servicePids = serviceNames.map((name) => system.processes.get(name)!.child.pid);
    const accepted = new Set<string>();
    let upserting = true;
    const template = catalog[0]!.product;
    const upserts = (async () => {
      for (let i = 0; upserting; i++) {
        const id = `restart-${i}`;
        const body = { name: `Restart Trail Shoe ${i}`, description: 'A trail running shoe upserted while the local Azure restarts.', category: 'shoes', price: 99, imageUrl: template.imageUrl };
        const response = await storefront.fetch(`/v1/products/${id}`, { method: 'PUT', body: JSON.stringify(body) }).catch(() => undefined);
        await response?.arrayBuffer();
        if (response?.status === 202) accepted.add(id);
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await waitFor(() => accepted.size >= 5, 20_000, () => 'no upsert accepted before the kill');

    await system.restartLocalAzure('SIGKILL');
    expect((await localAzureStatus(system.home)).state).toBe('running');

    const similar = `/v1/products/${template.id}/similar?limit=3`;
    await waitFor(async () => (await storefront.fetch(similar)).status === 200, 90_000, () => 'similar products never answered 200 after the restart', 250);
    await waitFor(
      async () => (await storefront.fetch('/v1/images:analyze', { method: 'POST', body: catalog[1]!.image, headers: { 'content-type': 'image/png' } })).status === 200,
      90_000,
      () => 'image analysis never answered 200 after the restart',
      250,
    );
    const acceptedBeforeStop = accepted.size;
    await waitFor(() => accepted.size >= acceptedBeforeStop + 5, 60_000, () => 'no upsert accepted after the restart');
    upserting = false;
    await upserts;

    const indexed = async (id: string): Promise<boolean> => {
      const response = await storefront.fetch(`/v1/products/${id}`);
      return response.status === 200 && ((await response.json()) as { indexing: { state: string } }).indexing.state === 'indexed';
    };
    const pending = new Set(accepted);
    await waitFor(
      async () => {
        for (const id of pending) if (await indexed(id)) pending.delete(id);
        return pending.size === 0;
      },
      90_000,
      () => `accepted upserts not indexed: ${[...pending].join(', ')}`,
      1000,
    );

    expect(serviceNames.map((name) => system.processes.get(name)!.child.pid)).toEqual(servicePids);
    // Ready again by themselves: a link a service re-attaches after the restart may still be on its way back when the
    // last upsert is indexed (on a loaded machine), so each gets a bound, and the failure names the checks still down.
    for (const name of serviceNames) {
      let last = '';
      await waitFor(
        async () => {
          const ready = await fetch(`http://127.0.0.1:${system.ports.get(name)}/health/ready`);
          last = `${ready.status} ${await ready.text()}`;
          return ready.status === 200;
        },
        30_000,
        () => `${name} not ready again after the restart: ${last}`,
        250,
      );
    }
  }, 300_000);
});
