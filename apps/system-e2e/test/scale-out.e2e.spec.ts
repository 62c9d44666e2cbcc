import type { ProductView, RecommendationResult } from '@keyless/contracts';
import { freePort, waitFor } from '@keyless/launcher';
import { TcpGate } from '@keyless/local-azure/testing';
import { useRunningSystem, type RunningSystemFixture } from './support/running-system.js';

/** A caller of one gateway instance (by its process name, `gateway-2`), with the storefront's token. */
function through(e2e: RunningSystemFixture, instance: string): (path: string, init?: RequestInit) => Promise<Response> {
  return async (path, init = {}) =>
    fetch(`http://127.0.0.1:${e2e.system.ports.get(instance)}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${await e2e.storefront.token()}`, ...(typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}), ...init.headers },
    });
}

const json = async <T>(response: Response): Promise<T> => (await response.json()) as T;

// Two instances of every service against one PostgreSQL. The recommendation instances reach the database through a
// gate the test cuts and restores (the database lost, unreachable at start); everything else connects directly.
describe('Keyless scaled out: two instances of every service, one database', () => {
  let gate: TcpGate;
  /** The port of the first recommendation instance's health details listener (readiness with the reasons). */
  let healthDetailsPort = 0;
  /** Where the recommendation instances find PostgreSQL: through the gate. */
  const viaGate = () => ({ PGHOST: '127.0.0.1', PGPORT: String(gate.port) });
  const e2e = useRunningSystem({
    name: 'scale-out',
    async systemOptions() {
      const postgresPort = await freePort();
      healthDetailsPort = await freePort();
      gate = await TcpGate.open({ host: '127.0.0.1', port: postgresPort });
      return {
        localAzureConfig: { network: { ports: { postgres: postgresPort } } },
        serviceEnv: { gateway: { REQUEST_TIMEOUT_MS: '8000' }, recommendation: { ...viaGate(), HEALTH_DETAILS_PORT: String(healthDetailsPort) } },
      };
    },
    async afterStart(system) {
      await Promise.all([
        system.addInstance('gateway', 'gateway-2', await freePort()),
        system.addInstance('recommendation', 'recommendation-2', await freePort(), { ...viaGate(), HEALTH_DETAILS_PORT: String(await freePort()) }),
        system.addInstance('vision', 'vision-2', await freePort()),
      ]);
    },
    beforeStop: () => gate?.restore(),
    afterStop: () => gate?.close(),
    startTimeoutInMs: 300_000,
  });
  const viaFirst = through(e2e, 'gateway');
  const viaSecond = through(e2e, 'gateway-2');

  const product = (id: string, name: string) => ({ id, body: { name, description: `A ${name.toLowerCase()} for the scale-out tests.`, category: 'shoes', price: 99.5 } });
  const viewOf = async (call: ReturnType<typeof through>, id: string) => {
    const response = await call(`/v1/products/${id}`);
    return response.status === 200 ? (await json<ProductView>(response)).indexing.state : String(response.status);
  };
  /** How long readiness may lag the database: the probe's answer is reused for 1 s, a probe answers within 3 s. */
  const readinessLagInMs = 10_000;
  /** The first recommendation instance's readiness: the public answer, or the details listener's (with the reasons). */
  const recommendationHealth = async (listener: 'public' | 'details' = 'public') => {
    const port = listener === 'public' ? e2e.system.ports.get('recommendation') : healthDetailsPort;
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined);
    return response ? { status: response.status, body: (await response.json()) as { details?: { database?: { status: string; message?: string } } } } : undefined;
  };

  it('takes a write through one gateway and reads it back through the other', async () => {
    const { id, body } = product('scale-out-runner', 'Scale Out Runner');
    expect((await viaFirst(`/v1/products/${id}`, { method: 'PUT', body: JSON.stringify(body) })).status).toBe(202);
    await waitFor(async () => (await viaSecond(`/v1/products/${id}`)).status === 200 && (await viewOf(viaSecond, id)) === 'indexed', 30_000, () => `${id} not indexed`, 250);
    const similar = await json<RecommendationResult>(await viaSecond(`/v1/products/${e2e.catalog.find((p) => p.product.category === 'shoes')!.product.id}/similar?limit=10`));
    expect(similar.items.map((i) => i.product.id)).toContain(id);
  });

  it('answers every read the same through either gateway, whichever recommendation instance takes it', async () => {
    const ids = e2e.catalog.slice(0, 20).map((p) => p.product.id);
    const views = await Promise.all(ids.flatMap((id) => [viaFirst, viaSecond].map(async (call) => [id, await viewOf(call, id)] as const)));
    expect(views.every(([, state]) => state === 'indexed')).toBe(true);
  });

  it('loses no write when a recommendation instance is killed under load', async () => {
    const writes = Array.from({ length: 24 }, (_, i) => product(`kill-load-${i}`, `Kill Load Shoe ${i}`));
    let accepted = 0;
    const sent = writes.map(({ id, body }, i) =>
      (i % 2 ? viaFirst : viaSecond)(`/v1/products/${id}`, { method: 'PUT', body: JSON.stringify(body) }).then((r) => {
        accepted += 1;
        return r.status;
      }),
    );
    // Mid-way: the second instance dies without a chance to finish (SIGKILL), holding whatever it had locked.
    await waitFor(() => accepted >= writes.length / 3, 30_000, () => 'the writes were not accepted', 20);
    e2e.system.processes.get('recommendation-2')!.child.kill('SIGKILL');
    expect(await Promise.all(sent)).toEqual(Array(writes.length).fill(202));
    // What the dead instance held comes back when its locks (and leases) run out; the survivor indexes everything.
    await waitFor(
      async () => (await Promise.all(writes.map(({ id }) => viewOf(viaFirst, id)))).every((state) => state === 'indexed'),
      150_000,
      () => 'not every written product was indexed after the kill',
      1_000,
    );
  }, 200_000);

  it('answers 503, not 500, while the database is lost, and recovers without a restart', async () => {
    const id = e2e.catalog[0]!.product.id;
    await gate.cut();
    try {
      const lost = await viaFirst(`/v1/products/${id}`);
      expect(lost.status).toBe(503);
      expect(lost.headers.get('retry-after')).toBeTruthy();
      // Readiness reuses the database probe's answer for a second (healthCheckMaxAgeInMs), then probes within 3 s.
      await waitFor(async () => (await recommendationHealth())?.status === 503, readinessLagInMs, () => 'readiness did not turn down', 250);
      expect(await recommendationHealth()).toMatchObject({ status: 503, body: { details: { database: { status: 'down' } } } });
    } finally {
      await gate.restore();
    }
    await waitFor(async () => (await viaFirst(`/v1/products/${id}`)).status === 200, 30_000, () => 'the gateway did not recover', 250);
    await waitFor(async () => (await recommendationHealth())?.status === 200, readinessLagInMs, () => 'readiness did not come back up', 250);
  }, 60_000);

  it('keeps readiness down with the reason while the database is unreachable at start, without crash-looping, then becomes ready', async () => {
    await gate.cut();
    const restarted = e2e.system.restartService('recommendation');
    try {
      await waitFor(
        async () => /not ready after [2-9]\d* attempt/.test((await recommendationHealth('details'))?.body.details?.database?.message ?? ''),
        60_000,
        () => `readiness never reported repeated failed attempts: ${JSON.stringify(e2e.system.processes.get('recommendation')?.child.exitCode)}`,
        250,
      );
      expect(e2e.system.processes.get('recommendation')!.child.exitCode).toBeNull();
      expect((await recommendationHealth('details'))?.body.details?.database?.message).toMatch(/ECONNREFUSED|Connection terminated|timeout/);
      expect(await recommendationHealth()).toMatchObject({ status: 503, body: { details: { database: { status: 'down' } } } });
    } finally {
      await gate.restore();
    }
    await restarted;
    expect((await recommendationHealth())?.status).toBe(200);
  }, 120_000);
});
