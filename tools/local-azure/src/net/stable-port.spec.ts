import { createServer, type Server } from 'node:net';
import { canBind, ephemeralPortRange, pickStablePort, stablePortDefaults, waitUntilBindable } from './stable-port.js';

function hold(port = 0): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
const release = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe(pickStablePort.name, () => {
  it('picks a bindable port below the range the OS uses for outgoing connections', async () => {
    const [ephemeralLow] = ephemeralPortRange();
    const port = await pickStablePort('loopback');
    expect(port).toBeGreaterThanOrEqual(stablePortDefaults.lowestPort);
    expect(port).toBeLessThan(ephemeralLow);
    expect(await canBind(port, 'loopback')).toBe(true);
  });
});

describe(waitUntilBindable.name, () => {
  it('says a port held by another listener is not bindable', async () => {
    const holder = await hold();
    const { port } = holder.address() as { port: number };
    try {
      expect(await canBind(port, 'loopback')).toBe(false);
      expect(await waitUntilBindable(port, 'loopback', 300)).toBe(false);
    } finally {
      await release(holder);
    }
  });

  it('waits for a port that is released while it waits', async () => {
    const holder = await hold();
    const { port } = holder.address() as { port: number };
    const waiting = waitUntilBindable(port, 'loopback', 10_000);
    await release(holder);
    expect(await waiting).toBe(true);
  });
});
