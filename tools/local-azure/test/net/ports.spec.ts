import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataPlane } from '../../src/data-plane.js';
import { listen } from '../../src/net/listen.js';
import { ephemeralPortRange } from '../../src/net/stable-port.js';
import { startTestAzure } from '../../src/testing/index.js';

/**
 * A data plane added later (like a new resource): its main listener on `context.bind`, and a second one bound
 * by name through `context.listen`. Neither is known to the local Azure in advance.
 */
const laterPlane: DataPlane = {
  resource: 'keyVault',
  async start(context) {
    const main = await listen(() => createServer((socket) => socket.end('main')), context.bind);
    const extra = await context.listen('keyVaultReplica', () => createServer((socket) => socket.end('extra')));
    return {
      port: main.port,
      env: { KEY_VAULT_MAIN_PORT: String(main.port), KEY_VAULT_EXTRA_PORT: String(extra.port) },
      summary: `test plane on ${main.port} and ${extra.port}`,
      stop: () => main.close(),
    };
  },
};

/** Two data planes, the first of which finishes starting only once the second has started. */
function planesStartingOutOfOrder(): DataPlane[] {
  let secondStarted!: () => void;
  const second = new Promise<void>((resolve) => (secondStarted = resolve));
  const plane = (resource: DataPlane['resource'], variable: string, ready: () => Promise<void>, started: () => void): DataPlane => ({
    resource,
    async start(context) {
      const listener = await listen(() => createServer((socket) => socket.end()), context.bind);
      await ready();
      started();
      return { port: listener.port, env: { [variable]: String(listener.port) }, summary: `${variable} on ${listener.port}`, stop: () => listener.close() };
    },
  });
  return [plane('keyVault', 'FIRST_PLANE_PORT', () => second, () => undefined), plane('appInsights', 'SECOND_PLANE_PORT', () => Promise.resolve(), secondStarted)];
}

describe('Env files of data planes that start concurrently', () => {
  it("list the planes' variables (and the state file their endpoints) in the configured order, whichever plane finished starting first", async () => {
    const home = mkdtempSync(join(tmpdir(), 'local-azure-plane-order-'));
    const test = await startTestAzure({ home, dataPlanes: planesStartingOutOfOrder() });
    try {
      const names = Object.keys(test.azure.hostEnv('gateway'));
      expect(names.filter((name) => name.endsWith('_PLANE_PORT'))).toEqual(['FIRST_PLANE_PORT', 'SECOND_PLANE_PORT']);
      const runtime = JSON.parse(readFileSync(join(home, 'runtime.json'), 'utf8')) as { endpoints: { resources: Record<string, string> } };
      expect(Object.keys(runtime.endpoints.resources)).toEqual(['keyVault', 'appInsights']);
    } finally {
      await test.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('Ports of listeners the local Azure does not know in advance', () => {
  const home = mkdtempSync(join(tmpdir(), 'local-azure-ports-generic-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it("keeps a data plane's listener and its extra named listener on the same ports across restarts", async () => {
    const first = await startTestAzure({ home, dataPlanes: [laterPlane] });
    const before = first.azure.hostEnv('gateway');
    await first.stop();
    const kept = JSON.parse(readFileSync(join(home, 'ports.json'), 'utf8')) as Record<string, number>;
    expect(kept).toMatchObject({ keyVault: Number(before.KEY_VAULT_MAIN_PORT), keyVaultReplica: Number(before.KEY_VAULT_EXTRA_PORT) });

    const second = await startTestAzure({ home, dataPlanes: [laterPlane] });
    try {
      const after = second.azure.hostEnv('gateway');
      expect([after.KEY_VAULT_MAIN_PORT, after.KEY_VAULT_EXTRA_PORT, after.IDENTITY_ENDPOINT]).toEqual([before.KEY_VAULT_MAIN_PORT, before.KEY_VAULT_EXTRA_PORT, before.IDENTITY_ENDPOINT]);
    } finally {
      await second.stop();
    }
  });
});

describe('Ports of a local Azure that will not be restarted', () => {
  it("lets the OS pick them (newPorts 'system'), leaving the stable range below the OS's own to homes that restart", async () => {
    const [ephemeralLow, ephemeralHigh] = ephemeralPortRange();
    const throwaway = await startTestAzure({ dataPlanes: [laterPlane] });
    const home = mkdtempSync(join(tmpdir(), 'local-azure-ports-stable-'));
    const kept = await startTestAzure({ home, dataPlanes: [laterPlane] });
    try {
      const portsOf = (env: Record<string, string>) => [env.KEY_VAULT_MAIN_PORT, env.KEY_VAULT_EXTRA_PORT, new URL(env.IDENTITY_ENDPOINT!).port].map(Number);
      for (const port of portsOf(throwaway.azure.hostEnv('gateway'))) expect(port >= ephemeralLow && port <= ephemeralHigh).toBe(true);
      for (const port of portsOf(kept.azure.hostEnv('gateway'))) expect(port).toBeLessThan(ephemeralLow);
    } finally {
      await Promise.all([throwaway.stop(), kept.stop()]);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
