import type { ServiceBusClient } from '@azure/service-bus';
import rhea from 'rhea';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { ServiceBusStatus } from '../../src/servicebus/admin-routes.js';
import { eventually, receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

// The transport: many connections, both loopback families, SASL mechanisms, heartbeats, bad input.
describe('Service Bus connections', () => {
  let bus: TestServiceBus;
  let port: number;

  beforeAll(async () => {
    // A smaller message size limit than the 256 KiB default (send-receive.spec.ts tests the default).
    bus = await startServiceBus({ config: { resources: { serviceBus: { maxMessageSizeInBytes: 65_536 } } } });
    bus.grantDataOwner();
    port = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
  });
  afterAll(() => bus.stop());

  const status = (): Promise<ServiceBusStatus> => bus.test.admin().call<ServiceBusStatus>('GET', '/servicebus');

  it('serves 200 clients at once, each on its own connection', async () => {
    // 200 TLS handshakes and token exchanges at once take seconds on a busy 2-core machine: this test is
    // about capacity, so each operation gets the SDK's own 60-second timeout rather than the short one.
    const clients: ServiceBusClient[] = Array.from({ length: 200 }, () => bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 60_000 } }));
    await Promise.all(clients.map((client, i) => client.createSender('plain').sendMessages({ body: i, messageId: `client-${i}` })));
    expect((await status()).connections).toBeGreaterThanOrEqual(200);
    const received = await receiveExactly(bus.client().createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 200, 10_000);
    expect(new Set(received.map((m) => m.messageId)).size).toBe(200);
    await Promise.all(clients.map((client) => client.close()));
    await eventually(async () => ((await status()).connections <= 2 ? true : undefined), 15_000, 'the connections to close');
  }, 120_000);

  it('applies the configured message size limit to batches and single messages', async () => {
    const sender = bus.client().createSender('plain');
    expect((await sender.createMessageBatch()).maxSizeInBytes).toBe(65_536);
    expect((await status()).maxMessageSizeInBytes).toBe(65_536);
    await expect(sender.sendMessages({ body: Buffer.alloc(70 * 1024) })).rejects.toMatchObject({ code: 'MessageSizeExceeded' });
    await sender.sendMessages({ body: Buffer.alloc(60 * 1024) });
    await receiveExactly(bus.client().createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 1);
  });

  it('refuses a message many frames over the limit by its whole size, and keeps serving the link', async () => {
    // 4 MiB arrives as 64 frames of 64 KiB (the max-frame-size): past the limit, the rest is dropped as it arrives.
    const sender = bus.client().createSender('plain');
    const error = await sender.sendMessages({ body: Buffer.alloc(4 * 1024 * 1024, 1) }).then(
      () => undefined,
      (refusal: unknown) => refusal as Error & { code?: string },
    );
    expect(error).toMatchObject({ code: 'MessageSizeExceeded' });
    expect(Number(/size: (\d+) bytes/.exec(error!.message)?.[1])).toBeGreaterThan(4 * 1024 * 1024);
    expect(error!.message).toMatch(/exceeds the limit \(65536 bytes\)/);
    await sender.sendMessages({ body: 'after the large one', messageId: 'after-large' });
    const [message] = await receiveExactly(bus.client().createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 1);
    expect(message!.messageId).toBe('after-large');
  });

  // A host without IPv6 loopback (some CI containers) cannot have the broker listen there.
  const families = [['IPv4', '127.0.0.1'], ...(hasIpv6Loopback() ? [['IPv6', '::1']] : [])];
  it.each(families)('answers on %s loopback with SASL offering ANONYMOUS and MSSBCBS', async (_family, host) => {
    const socket = await openTls(host, port);
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0])); // "AMQP" SASL header
    const reply = await readAtLeast(socket, 40);
    expect(reply.subarray(0, 8)).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]));
    expect(reply.toString('latin1')).toContain('ANONYMOUS');
    expect(reply.toString('latin1')).toContain('MSSBCBS');
    socket.destroy();
  });

  it('opens a connection authenticated with SASL MSSBCBS (as .NET clients do) and sends heartbeats', async () => {
    const container = rhea.create_container();
    const connection = container.connect({
      host: 'localhost',
      port,
      transport: 'tls',
      servername: 'localhost',
      reconnect: false,
      // Ask for a frame every 250 ms at the latest: the broker must send empty frames when idle.
      idle_time_out: 500,
      sasl_mechanisms: { MSSBCBS: () => ({ start: (callback: (error: unknown, response: Buffer) => void) => callback(undefined, Buffer.alloc(0)) }) },
    } as unknown as Parameters<typeof container.connect>[0]);
    await new Promise<void>((resolve, reject) => {
      connection.once('connection_open', () => resolve());
      connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
    });
    const socket = (connection as unknown as { socket: TLSSocket }).socket;
    const heartbeats = await new Promise<number>((resolve) => {
      let count = 0;
      const onData = (data: Buffer): void => {
        if (data.equals(Buffer.from([0, 0, 0, 8, 2, 0, 0, 0])) && ++count === 3) {
          socket.off('data', onData);
          resolve(count);
        }
      };
      socket.on('data', onData);
    });
    expect(heartbeats).toBe(3);
    expect(connection.is_open()).toBe(true);
    connection.close();
  });

  it('closes a connection that sends a malformed frame and keeps serving the others', async () => {
    const socket = await openTls('127.0.0.1', port);
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0])); // AMQP header without SASL
    socket.write(Buffer.concat([Buffer.from([0, 0, 0, 16, 2, 0, 0, 0]), Buffer.alloc(8, 0xff)]));
    await closed(socket);
    await stillServing();
  });

  it('closes a connection that sends frames out of order (attach before open and begin)', async () => {
    const socket = await openTls('127.0.0.1', port);
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]));
    const types = rhea.types as unknown as { Writer: new () => { write(value: unknown): void; toBuffer(): Buffer } };
    const writer = new types.Writer();
    writer.write(rhea.types.described(rhea.types.wrap_ulong(0x12), rhea.types.wrap_list(['rogue-link', 0, false])));
    const body = writer.toBuffer();
    const header = Buffer.from([0, 0, 0, 0, 2, 0, 0, 0]);
    header.writeUInt32BE(8 + body.length);
    socket.write(Buffer.concat([header, body]));
    await closed(socket);
    await stillServing();
  });

  it('announces Azure’s max-frame-size of 65536 in its open', async () => {
    const container = rhea.create_container();
    const connection = container.connect({ host: 'localhost', port, transport: 'tls', servername: 'localhost', reconnect: false } as unknown as Parameters<typeof container.connect>[0]);
    await new Promise<void>((resolve, reject) => {
      connection.once('connection_open', () => resolve());
      connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
    });
    expect((connection as unknown as { remote: { open: { max_frame_size: number } } }).remote.open.max_frame_size).toBe(65_536);
    connection.close();
  });

  it('ends a connection whose frame header announces more than the max-frame-size, instead of buffering what follows', async () => {
    // No credentials are needed to get this far: the SASL header, then a frame "of 2 GiB" fed 64 KiB at a time.
    const socket = await openTls('127.0.0.1', port);
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]));
    socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 2, 1, 0, 0]));
    const chunk = Buffer.alloc(64 * 1024);
    const feeding = setInterval(() => socket.writable && socket.write(chunk), 5);
    try {
      await closedWithin(socket, 10_000);
    } finally {
      clearInterval(feeding);
    }
    await stillServing();
  });

  it('refuses a request to $cbs larger than the limit without taking it, though no token is needed to send one', async () => {
    // Requests on $cbs are taken before any authorization: past the limit, the frames are dropped as they arrive
    // rather than buffered (an anonymous client could send gigabytes) and the request is refused, not answered.
    const container = rhea.create_container();
    const connection = container.connect({ host: 'localhost', port, transport: 'tls', servername: 'localhost', reconnect: false } as unknown as Parameters<typeof container.connect>[0]);
    const sender = connection.open_sender({ target: { address: '$cbs' } });
    const outcome = await new Promise<{ state: string; condition?: string }>((resolve, reject) => {
      sender.once('sendable', () => {
        sender.send({ message_id: 'huge', reply_to: 'cbs-none', application_properties: { operation: 'put-token', type: 'jwt', name: 'sb://localhost/plain' }, body: 'x'.repeat(1024 * 1024) });
      });
      sender.once('accepted', () => resolve({ state: 'accepted' }));
      sender.once('rejected', (context: { delivery?: { remote_state?: { error?: { condition?: string } } } }) => resolve({ state: 'rejected', condition: context.delivery?.remote_state?.error?.condition }));
      connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
    });
    connection.close();
    expect(outcome).toEqual({ state: 'rejected', condition: 'amqp:link:message-size-exceeded' });
  });

  it('refuses a TLS client that does not trust the local CA, without affecting others', async () => {
    const error = await new Promise<Error>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: [] });
      socket.once('error', resolve);
    });
    expect((error as NodeJS.ErrnoException).code).toMatch(/CERT|SELF_SIGNED|UNABLE/);
    await stillServing();
  });

  async function stillServing(): Promise<void> {
    const client = bus.client();
    const marker = `still here ${Math.random()}`;
    await client.createSender('plain').sendMessages({ body: marker });
    // Looks for its own message: one left over by an earlier test must not count (or fail this one).
    const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
    const deadline = Date.now() + 10_000;
    const seen: unknown[] = [];
    while (!seen.includes(marker) && Date.now() < deadline) {
      seen.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 1000 })).map((m) => m.body));
    }
    expect(seen).toContain(marker);
  }
});

function hasIpv6Loopback(): boolean {
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((address) => address.address === '::1'));
}

function openTls(host: string, port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function readAtLeast(socket: TLSSocket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length >= bytes) {
        socket.off('data', onData);
        resolve(buffer);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`connection closed after ${buffer.length} bytes`)));
  });
}

/** Resolves once the server closed `socket`; rejects if it is still open after `timeoutInMs`. */
function closedWithin(socket: TLSSocket, timeoutInMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the broker still held the connection after ${timeoutInMs} ms`));
    }, timeoutInMs);
    socket.on('error', () => undefined);
    closed(socket).then(() => {
      clearTimeout(timer);
      resolve();
    }, reject);
  });
}

function closed(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.closed) return resolve();
    socket.resume();
    socket.once('close', () => resolve());
  });
}
