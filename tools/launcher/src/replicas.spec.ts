import { createServer, type Server } from 'node:net';
import { checkLauncherPorts, gatewayPorts, parseReplicas, planInstances, serviceOf, storefrontGatewayEnv, UsageError } from './replicas.js';

describe('parseReplicas', () => {
  it.each([
    [undefined, 1],
    ['', 1],
    ['1', 1],
    ['3', 3],
    [' 8 ', 8],
  ])('reads KEYLESS_REPLICAS=%j as %d', (value, replicas) => {
    expect(parseReplicas(value)).toBe(replicas);
  });

  it.each(['0', '-1', '9', '1.5', '2x', 'two', '1e1'])('refuses KEYLESS_REPLICAS=%j with a UsageError naming the range', (value) => {
    expect(() => parseReplicas(value)).toThrow(UsageError);
    expect(() => parseReplicas(value)).toThrow(`KEYLESS_REPLICAS must be a whole number from 1 to 8 (instances of each of gateway, recommendation and vision), not "${value}".`);
  });
});

describe('planInstances', () => {
  it('runs one instance of each service under its own name by default, the gateway on PORT', () => {
    expect(planInstances(1, 3000)).toEqual([
      { name: 'recommendation', service: 'recommendation', index: 1 },
      { name: 'vision', service: 'vision', index: 1 },
      { name: 'gateway', service: 'gateway', index: 1, port: 3000 },
    ]);
  });

  it('runs N instances of each, gateways on PORT, PORT+10, PORT+20, never on PORT+1 (the demo images)', () => {
    const plan = planInstances(3, 4000);
    expect(plan.map((instance) => instance.name)).toEqual(['recommendation', 'recommendation-2', 'recommendation-3', 'vision', 'vision-2', 'vision-3', 'gateway', 'gateway-2', 'gateway-3']);
    expect(plan.filter((instance) => instance.service === 'gateway').map((instance) => instance.port)).toEqual([4000, 4010, 4020]);
    expect(plan.filter((instance) => instance.service !== 'gateway').every((instance) => instance.port === undefined)).toBe(true);
    expect(gatewayPorts(4000, 8)).not.toContain(4001);
  });

  it('maps instance names back to their service', () => {
    expect(['gateway', 'gateway-2', 'gateway-limited', 'recommendation-3', 'vision', 'local-azure'].map(serviceOf)).toEqual(['gateway', 'gateway', 'gateway', 'recommendation', 'vision', undefined]);
  });
});

describe('storefrontGatewayEnv', () => {
  it('gives every gateway in GATEWAY_URLS and the first as GATEWAY_URL', () => {
    expect(storefrontGatewayEnv(['http://127.0.0.1:3000', 'http://127.0.0.1:3010'])).toEqual({
      GATEWAY_URL: 'http://127.0.0.1:3000',
      GATEWAY_URLS: 'http://127.0.0.1:3000,http://127.0.0.1:3010',
    });
  });
});

describe('checkLauncherPorts', () => {
  const listening: Server[] = [];
  const occupy = (port = 0): Promise<number> =>
    new Promise((resolve, reject) => {
      const server = createServer();
      listening.push(server);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  afterEach(async () => {
    await Promise.all(listening.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('names a later gateway instance whose port is in use, before anything starts', async () => {
    const taken = await occupy();
    // The second gateway of PORT = taken - 10 lands on the port in use.
    await expect(checkLauncherPorts(taken - 10, 2)).rejects.toThrow(
      new UsageError(`Port ${taken} (gateway instance 2) is in use. Stop what uses it, or run another copy with PORT=<free port> and its own LOCAL_AZURE_HOME.`),
    );
  });

  it('names the demo image port (PORT+1) when it is in use', async () => {
    const taken = await occupy();
    await expect(checkLauncherPorts(taken - 1, 1)).rejects.toThrow(`Port ${taken} (demo image server) is in use.`);
  });

  it('refuses gateway ports beyond 65535', async () => {
    await expect(checkLauncherPorts(65_520, 3)).rejects.toThrow('Port 65540 (gateway instance 3) is beyond 65535: with KEYLESS_REPLICAS=3 the gateways use PORT, PORT+10, …; choose a lower PORT.');
  });
});
