import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startServiceBus, type TestServiceBus } from './support.js';

/** The AMQP header of a client that starts with SASL, as every client of the namespace does. */
const saslHeader = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);

// Stopping the local Azure (Ctrl-C, `kill`, a restart) while the services keep running: their clients reconnect as
// soon as the broker closes their connections, so connections arrive while it stops.
describe('Service Bus stop', () => {
  let bus: TestServiceBus | undefined;
  afterEach(async () => {
    await bus?.stop().catch(() => undefined);
    bus = undefined;
  });

  describe('when a client connects while the broker closes its connections', () => {
    it('closes that connection too and stops, instead of waiting for it for good', async () => {
      bus = await startServiceBus();
      const port = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
      // A connection the broker serves, and one whose handshake is done but whose first bytes come later.
      const served = await openTls(port);
      served.write(saslHeader);
      await new Promise((resolve) => served.once('data', resolve));
      const late = await openTls(port);
      const lateClosed = new Promise<void>((resolve) => late.once('close', () => resolve()));
      late.on('error', () => undefined);

      const stopped = bus.test.stop().then(() => 'stopped');
      // Once the broker has closed the connections it served, the late one says it speaks AMQP (a client reconnecting).
      await new Promise((resolve) => served.once('close', resolve));
      if (!late.destroyed) late.write(saslHeader);
      let bound: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([stopped, new Promise<string>((resolve) => (bound = setTimeout(resolve, 15_000, 'still stopping after 15 s')))]);
      clearTimeout(bound);
      expect(outcome).toBe('stopped');
      await lateClosed;
    }, 60_000);
  });
});

function openTls(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}
