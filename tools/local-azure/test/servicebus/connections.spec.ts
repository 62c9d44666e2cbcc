import type { ServiceBusClient } from '@azure/service-bus';
import rhea, { type Connection, type Sender } from 'rhea';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { ServiceBusStatus } from '../../src/servicebus/admin-routes.js';
import { eventually, receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

/** The broker's port and the suite's bus, for the helpers below the suite. */
let currentPort = 0;
let currentBus: TestServiceBus;

// The transport: many connections, both loopback families, SASL mechanisms, heartbeats, bad input.
describe('Service Bus connections', () => {
  let bus: TestServiceBus;
  let port: number;

  beforeAll(async () => {
    // A smaller message size limit than the 256 KiB default (send-receive.spec.ts tests the default).
    // Connections without links are closed after 3 s (Azure: 60 s) and 4 s after their last link (Azure: 300 s).
    bus = await startServiceBus({ config: { resources: { serviceBus: { maxMessageSizeInBytes: 65_536, linklessConnectionTimeouts: { newConnectionInMs: 3000, afterLastLinkInMs: 4000 } } } } });
    bus.grantDataOwner();
    port = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
    currentPort = port;
    currentBus = bus;
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

  it('keeps granting credit to a link whose messages it refuses for their size', async () => {
    // rhea tops a link's credit up as messages arrive, and a refused one never arrives as a message: each took a
    // credit for good, and once the 500 of the link's window were spent the client could send nothing more on it.
    // Authenticated, so that a slow run is not cut by the 3 s an anonymous connection gets here.
    const connection = await openRhea();
    expect(await putToken(connection)).toBe(202);
    const sender = connection.open_sender({ target: { address: '$cbs' } });
    await new Promise((resolve) => sender.once('sendable', resolve));
    const request = (messageId: string, body: string) => ({ message_id: messageId, reply_to: 'cbs-none', application_properties: { operation: 'put-token', type: 'jwt', name: 'sb://localhost/plain' }, body });
    const outcomes = new Map<string, string>();
    const settled = (state: string) => (context: { delivery?: { tag?: Buffer } }) => outcomes.set(String(context.delivery?.tag), state);
    sender.on('rejected', settled('rejected'));
    sender.on('accepted', settled('accepted'));
    sender.on('released', settled('released'));
    connection.on('disconnected', () => outcomes.set('disconnected', 'disconnected'));
    // Three frames: the broker stops buffering a delivery once it has passed the limit with frames still to come.
    const oversized = 'x'.repeat(140 * 1024);
    for (let i = 0; i < 550; i++) sender.send(request(`huge-${i}`, oversized), `huge-${i}`);
    const last = sender.send(request('small', 'not a token'), 'small');
    try {
      await eventually(async () => (outcomes.has('small') || outcomes.has('disconnected') ? true : undefined), 30_000, 'the request after 550 refused ones to be answered');
      expect({ disconnected: outcomes.has('disconnected'), small: outcomes.get('small'), rejected: [...outcomes].filter(([tag, state]) => tag.startsWith('huge-') && state === 'rejected').length }).toEqual({ disconnected: false, small: expect.any(String), rejected: 550 });
      expect(last.remote_settled).toBe(true);
    } finally {
      connection.close();
    }
  }, 60_000);

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
    const connection = await openRhea();
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
    const connection = await openRhea();
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

  describe('when a connection holds no link', () => {
    it('closes a connection that opens no link, as Azure does (amqp:connection:forced)', async () => {
      const connection = await openRhea();
      const error = await closedByBroker(connection, 15_000);
      expect(error).toEqual({ condition: 'amqp:connection:forced', description: expect.stringMatching(/^The connection was closed by container '.+' because it did not have any active links in the past 3000 milliseconds\.$/) });
    });

    it('closes a connection once its last link has been closed for a while', async () => {
      const connection = await openRhea();
      const sender = connection.open_sender({ target: { address: '$cbs' } });
      await new Promise((resolve) => sender.once('sender_open', resolve));
      sender.close();
      const error = await closedByBroker(connection, 15_000);
      expect(error?.description).toMatch(/did not have any active links in the past 4000 milliseconds/);
    });

    it('closes a connection whose only link is $cbs and on which no token was accepted: an anonymous client cannot hold connections', async () => {
      const connection = await openRhea();
      const sender = connection.open_sender({ target: { address: '$cbs' } });
      await new Promise((resolve) => sender.once('sender_open', resolve));
      const error = await closedByBroker(connection, 15_000);
      expect(error).toEqual({ condition: 'amqp:connection:forced', description: expect.stringMatching(/because no token was accepted on it in the past 3000 milliseconds\.$/) });
    });

    it('keeps a connection whose $cbs link took a token, past the time without links', async () => {
      const connection = await openRhea();
      expect(await putToken(connection)).toBe(202);
      // Still open well past the 3 s an unauthenticated one gets (closedByBroker rejects when it is still open).
      await expect(closedByBroker(connection, 5000)).rejects.toThrow('still held the connection');
    });

    it('drops a connection that never gets as far as its open (a SASL header, then empty frames)', async () => {
      const socket = await openTls('127.0.0.1', port);
      socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]));
      // Something every second, so that no idle timeout ends it.
      const keepAlive = setInterval(() => socket.writable && socket.write(Buffer.from([0, 0, 0, 8, 2, 1, 0, 0])), 1000);
      try {
        await closedWithin(socket, 15_000);
      } finally {
        clearInterval(keepAlive);
      }
    });
  });

  it('refuses the 5000th link of a connection with QuotaExceeded’s condition, as Azure does, and keeps the connection', async () => {
    const connection = await openRhea();
    // Authenticated, as the SDK's connections are: an anonymous one is closed after 3 s however many links it holds,
    // and attaching 5000 links can take longer on a loaded machine. putToken's two $cbs links count among the 4999.
    expect(await putToken(connection)).toBe(202);
    const attach = (): Promise<Sender> =>
      new Promise((resolve) => {
        const sender = connection.open_sender({ target: { address: '$cbs' } });
        sender.once('sender_open', () => resolve(sender));
      });
    const links = await Promise.all(Array.from({ length: 4999 - 2 }, attach));
    // A refused attach is answered (without a target) and then detached with the reason.
    const refused = await new Promise<{ condition?: string; description?: string }>((resolve) => {
      const sender = connection.open_sender({ target: { address: '$cbs' } });
      sender.on('sender_error', () => undefined);
      sender.once('sender_close', (context: { sender?: { error?: { condition?: string; description?: string } } }) =>
        resolve({ condition: context.sender?.error?.condition, description: context.sender?.error?.description }),
      );
    });
    expect(refused).toEqual({ condition: 'amqp:resource-limit-exceeded', description: 'Cannot allocate more handles. The maximum number of handles is 4999.' });
    expect(links.every((link) => link.is_open())).toBe(true);
    expect(connection.is_open()).toBe(true);
    connection.close();
  }, 60_000);

  it('refuses the 1001st token of a connection as Azure does (QuotaExceeded), and keeps the ones it has', async () => {
    const token = (await bus.credential.getToken('https://servicebus.azure.net//.default'))!.token;
    const connection = await openRhea();
    const replies: { id: string; status: number; condition?: string; description: string }[] = [];
    const receiver = connection.open_receiver({ name: 'cbs-quota', source: { address: '$cbs' } });
    receiver.on('message', (context: { message?: { correlation_id?: unknown; application_properties?: Record<string, unknown> } }) => {
      const properties = context.message!.application_properties!;
      replies.push({ id: String(context.message!.correlation_id), status: Number(properties['status-code']), condition: properties['error-condition'] as string | undefined, description: String(properties['status-description']) });
    });
    const receiverOpen = new Promise((resolve) => receiver.once('receiver_open', resolve));
    const sender = connection.open_sender({ target: { address: '$cbs' } });
    await Promise.all([receiverOpen, new Promise((resolve) => sender.once('sendable', resolve))]);
    // A distinct audience each: the broker keeps a token per audience.
    for (let i = 0; i <= 1000; i++) {
      sender.send({ message_id: `put-${i}`, reply_to: 'cbs-quota', application_properties: { operation: 'put-token', type: 'jwt', name: `sb://localhost/plain-${i}` }, body: token });
    }
    await eventually(() => (replies.length === 1001 ? true : undefined), 30_000, '1001 answers from $cbs');
    const refused = replies.filter((answer) => answer.status !== 202);
    expect(refused).toEqual([{ id: expect.any(String), status: 403, condition: 'amqp:resource-limit-exceeded', description: "The maximum number of '1000' tokens per connection has been reached." }]);
    // A renewal of a token it holds is still taken.
    sender.send({ message_id: 'renewal', reply_to: 'cbs-quota', application_properties: { operation: 'put-token', type: 'jwt', name: 'sb://localhost/plain-0' }, body: token });
    await eventually(() => replies.find((answer) => answer.id === 'renewal'), 10_000, 'the renewal’s answer');
    expect(replies.find((answer) => answer.id === 'renewal')!.status).toBe(202);
    connection.close();
  }, 60_000);

  it('closes a connection that begins more sessions than the channel-max it was told', async () => {
    const connection = await openRhea();
    expect((connection as unknown as { remote: { open: { channel_max: number } } }).remote.open.channel_max).toBe(4999);
    // Authenticated, as the SDK's connections are: an anonymous one is closed after 3 s, and a loaded machine can take
    // longer to begin 5001 sessions (a CI run saw the linkless close first). putToken's session counts among them.
    expect(await putToken(connection)).toBe(202);
    const closing = closedByBroker(connection, 30_000);
    const internals = connection as unknown as { create_session(): { begin(): void } };
    for (let i = 0; i < 5001; i++) internals.create_session().begin();
    expect(await closing).toEqual({ condition: 'amqp:resource-limit-exceeded', description: expect.stringMatching(/maximum number of sessions on a connection is 5000/) });
  }, 60_000);

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

/** A rhea connection to the broker, still opening (SASL ANONYMOUS, no token: links to $cbs need none). */
function connectRhea(): Connection {
  const container = rhea.create_container();
  return container.connect({ host: 'localhost', port: currentPort, transport: 'tls', servername: 'localhost', reconnect: false } as unknown as Parameters<typeof container.connect>[0]);
}

/** A rhea connection to the broker, open. */
/** Puts a token for the test namespace's identity on `connection`'s `$cbs` (two links, left open); the answer's status. */
async function putToken(connection: Connection): Promise<number> {
  const token = (await currentBus.credential.getToken('https://servicebus.azure.net//.default'))!.token;
  const receiver = connection.open_receiver({ name: 'cbs-answers', source: { address: '$cbs' } });
  const answered = new Promise<number>((resolve) =>
    receiver.once('message', (context: { message?: { application_properties?: Record<string, unknown> } }) => resolve(Number(context.message!.application_properties!['status-code']))),
  );
  const sender = connection.open_sender({ target: { address: '$cbs' } });
  await new Promise((resolve) => sender.once('sendable', resolve));
  sender.send({ message_id: 'put', reply_to: 'cbs-answers', application_properties: { operation: 'put-token', type: 'jwt', name: 'sb://localhost/plain' }, body: token });
  return answered;
}

async function openRhea(): Promise<Connection> {
  const connection = connectRhea();
  await new Promise<void>((resolve, reject) => {
    connection.once('connection_open', () => resolve());
    connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
  });
  return connection;
}

/** The error the broker closed `connection` with; rejects if it is still open after `timeoutInMs`. */
function closedByBroker(connection: Connection, timeoutInMs: number): Promise<{ condition?: string; description?: string } | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.close();
      reject(new Error(`the broker still held the connection after ${timeoutInMs} ms`));
    }, timeoutInMs);
    connection.on('connection_error', () => undefined);
    connection.once('connection_close', (context: { connection: { error?: { condition?: string; description?: string } } }) => {
      clearTimeout(timer);
      const error = context.connection.error;
      resolve(error ? { condition: error.condition, description: error.description } : undefined);
    });
  });
}

describe('Service Bus connections, at the namespace’s connection quota', () => {
  let bus: TestServiceBus;

  beforeAll(async () => {
    // Azure Standard takes 5000 AMQP connections at once; two here.
    bus = await startServiceBus({ config: { resources: { serviceBus: { maxConnections: 2 } } } });
    currentPort = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
  });
  afterAll(() => bus.stop());

  it('closes a connection beyond the quota with QuotaExceeded’s condition once it opens, and takes one again when another closes', async () => {
    const first = await openRhea();
    const second = await openRhea();
    const third = connectRhea();
    expect(await closedByBroker(third, 15_000)).toEqual({
      condition: 'amqp:resource-limit-exceeded',
      description: 'ConnectionsQuotaExceeded for namespace sb-keyless-local: at most 2 connections are open at once.',
    });
    expect([first.is_open(), second.is_open()]).toEqual([true, true]);
    first.close();
    await eventually(async () => ((await bus.test.admin().call<ServiceBusStatus>('GET', '/servicebus')).connections <= 1 ? true : undefined), 10_000, 'the connections to close');
    const fourth = await openRhea();
    const sender = fourth.open_sender({ target: { address: '$cbs' } });
    await new Promise((resolve) => sender.once('sender_open', resolve));
    expect(fourth.is_open()).toBe(true);
    fourth.close();
    second.close();
  });
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
