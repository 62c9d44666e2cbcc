import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { ServiceBusClient, ServiceBusSender } from '@azure/service-bus';
import { queues } from '@keyless/contracts';
import { waitFor } from '@keyless/testing';
import { writeFramesTogether } from '../../src/amqp-socket.js';
import { shortRetries, startTestBus, type TestBus } from '../support/test-bus.js';

/**
 * A TCP relay between the SDK and the broker that counts the TLS records the client writes (it reads the 5-byte
 * record headers of the byte stream; the bytes stay encrypted), and can cut every connection through it.
 */
class RecordCountingRelay {
  records = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      const broker = createConnection(this.target);
      this.sockets.add(client).add(broker);
      let pending = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        // A TLS record: content type (1 byte), version (2), length (2), then the record.
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          if (pending[0] === 23) this.records++; // application data: what the connection's frames travel in
          pending = pending.subarray(5 + pending.readUInt16BE(3));
        }
        broker.write(chunk);
      });
      broker.pipe(client);
      const close = () => {
        client.destroy();
        broker.destroy();
        this.sockets.delete(client);
        this.sockets.delete(broker);
      };
      for (const socket of [client, broker]) socket.on('close', close).on('error', close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as { port: number }).port;
  }

  /** Cuts every connection through the relay (the SDK reconnects on a new socket). */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/** The TLS records the client wrote while `count` messages were sent in one event-loop turn (after a warm-up send). */
async function recordsForSendsInOneTurn(relay: RecordCountingRelay, sender: ServiceBusSender, count: number): Promise<number> {
  await sender.sendMessages({ body: 'warm-up' });
  // Quiet first: the credit and acknowledgement frames that follow the warm-up are not counted.
  let seen = -1;
  await waitFor('the connection to go quiet', async () => {
    const quiet = relay.records === seen;
    seen = relay.records;
    await new Promise((resolve) => setTimeout(resolve, 100));
    return quiet && relay.records === seen;
  });
  const before = relay.records;
  await Promise.all(Array.from({ length: count }, (_, i) => sender.sendMessages({ body: `message ${i}` })));
  return relay.records - before;
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('writeFramesTogether (the SDK against the local Service Bus through a counting relay, host "gateway")', () => {
  let bus: TestBus;
  let relay: RecordCountingRelay;
  let endpoint: string;

  beforeAll(async () => {
    bus = await startTestBus();
    const [host, port] = bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':') as [string, string];
    relay = new RecordCountingRelay({ host: host === 'localhost' ? '127.0.0.1' : host, port: Number(port) });
    endpoint = `sb://${host}:${await relay.listen()}`;
  });
  afterAll(async () => {
    await bus?.stop();
    await relay?.close();
  });

  const client = (): ServiceBusClient => bus.client({ ...shortRetries, customEndpointAddress: endpoint });

  describe('when the client is left as the SDK makes it', () => {
    it('writes a TLS record per frame: 20 sends in one turn take about 20 records', async () => {
      const sender = client().createSender(queues.recommendationRequests);
      expect(await recordsForSendsInOneTurn(relay, sender, 20)).toBeGreaterThanOrEqual(15);
      await sender.close();
    });
  });

  describe('when its frames are written together', () => {
    it('writes the frames of one turn in one TLS record: 20 sends take at most 2 records', async () => {
      const sbClient = client();
      expect(writeFramesTogether(sbClient)).toBe(true);
      const sender = sbClient.createSender(queues.recommendationRequests);
      expect(await recordsForSendsInOneTurn(relay, sender, 20)).toBeLessThanOrEqual(2);
      await sender.close();
    });

    it('writes them together on the connection it reconnects with, too', async () => {
      const sbClient = client();
      writeFramesTogether(sbClient);
      const sender = sbClient.createSender(queues.recommendationRequests);
      await sender.sendMessages({ body: 'before the cut' });
      relay.cut();
      // The SDK notices the closed connection and opens a new one through the relay (a new socket, a new rhea connection).
      await waitFor('the sender to send again', () => sender.sendMessages({ body: 'after the cut' }).then(() => true, () => false), 15_000, 100);
      expect(await recordsForSendsInOneTurn(relay, sender, 20)).toBeLessThanOrEqual(2);
      await sender.close();
    });

    it('leaves a client whose internals are not shaped as expected unchanged, and says so', () => {
      expect(writeFramesTogether({} as ServiceBusClient)).toBe(false);
      expect(writeFramesTogether({ _connectionContext: { connection: {} } } as unknown as ServiceBusClient)).toBe(false);
      expect(writeFramesTogether({ _connectionContext: { connection: { _connection: { init: 'not a function' } } } } as unknown as ServiceBusClient)).toBe(false);
    });
  });
});
