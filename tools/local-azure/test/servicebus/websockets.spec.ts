import { jest } from '@jest/globals';
import { ServiceBusClient } from '@azure/service-bus';
import { connect, type TLSSocket } from 'node:tls';
import type { ServiceBusStatus } from '../../src/servicebus/admin-routes.js';
import { eventually, receiveExactly, shortRetries, startServiceBus, type TestServiceBus } from './support.js';

// AMQP over WebSockets (the SDK's webSocketOptions, used behind proxies): wss://<namespace>/$servicebus/websocket
// on the namespace's one port, subprotocol AMQPWSB10.
describe('Service Bus over WebSockets', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  let port: number;

  /** Sends a raw HTTP request over TLS and resolves with the first bytes of the answer. */
  function rawRequest(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost' }, () => socket.write(request));
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
        if (answer.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(answer);
        }
      });
      socket.on('error', reject);
    });
  }

  const upgrade = (path: string, protocol: string): string =>
    `GET ${path} HTTP/1.1\r\nHost: localhost:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    port = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
    // Node's own WebSocket client: the SDK takes any WebSocket constructor.
    client = bus.client({ ...shortRetries, webSocketOptions: { webSocket: WebSocket } });
  }, 30_000);
  afterAll(() => bus.stop());

  it('sends, receives with a lock, settles and manages sessions over a WebSocket, large messages included', async () => {
    const large = 'x'.repeat(200_000);
    // A queue with Azure's default 60 s lock: receiving 200 KB and settling over a WebSocket outlasted a 5 s lock in a
    // CI run on a machine loaded far past its two cores (the completion then failed with MessageLockLost).
    await client.createSender('default-lock').sendMessages([{ body: 'over a websocket', messageId: 'ws-1' }, { body: large, messageId: 'ws-2' }]);
    const receiver = client.createReceiver('default-lock');
    const received = await receiveExactly(receiver, 2);
    expect(received.map((m) => [m.messageId, String(m.body).length])).toEqual([
      ['ws-1', 'over a websocket'.length],
      ['ws-2', large.length],
    ]);
    for (const message of received) await receiver.completeMessage(message);
    await client.createSender('sessions').sendMessages({ body: 'in a session', sessionId: 'ws' });
    const session = await client.acceptSession('sessions', 'ws');
    await session.setSessionState('state over ws');
    expect(String(await session.getSessionState())).toBe('state over ws');
    const [inSession] = await receiveExactly(session, 1);
    await session.completeMessage(inSession!);
  });

  it('lets go of the connection when the client closes its WebSocket', async () => {
    const admin = bus.test.admin();
    const connections = async (): Promise<number> => (await admin.call<ServiceBusStatus>('GET', '/servicebus')).connections;
    const before = await connections();
    const closing = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential, { ...shortRetries, webSocketOptions: { webSocket: WebSocket } });
    await closing.createSender('plain').sendMessages({ body: 'then close' });
    expect(await connections()).toBe(before + 1);
    await closing.close();
    await eventually(async () => ((await connections()) === before ? true : undefined), 5000, 'the broker to drop the connection');
    // A WebSocket that goes away without closing AMQP first: the broker must let go of it too.
    const raw = new WebSocket(`wss://${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/$servicebus/websocket`, ['AMQPWSB10']);
    raw.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      raw.onopen = () => raw.send(Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]));
      raw.onmessage = () => resolve();
      raw.onerror = () => reject(new Error('the WebSocket failed'));
    });
    expect(await connections()).toBe(before + 1);
    raw.close();
    await eventually(async () => ((await connections()) === before ? true : undefined), 5000, 'the broker to drop the abandoned connection');
  });

  it('joins a large frame once it has arrived, not at every read (a client nobody authenticated sends it)', async () => {
    const socket: TLSSocket = await new Promise((resolve, reject) => {
      const tls = connect({ host: '127.0.0.1', port, servername: 'localhost' }, () => resolve(tls));
      tls.once('error', reject);
    });
    socket.on('error', () => undefined);
    socket.write(upgrade('/$servicebus/websocket', 'AMQPWSB10'));
    await new Promise<void>((resolve) => {
      let answer = '';
      const onData = (chunk: Buffer): void => {
        answer += chunk.toString('latin1');
        if (!answer.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        resolve();
      };
      socket.on('data', onData);
    });
    // One masked binary frame of 8 MiB: it reaches the server in some 500 TLS records.
    const payloadBytes = 8 * 1024 * 1024;
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payloadBytes), 2);
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      socket.write(header);
      socket.write(Buffer.alloc(payloadBytes));
      // The payload is no AMQP: once it has arrived whole, the broker ends the connection.
      await new Promise((resolve) => socket.once('close', resolve));
      // Joined at every read, it took some 500 joins (and 4 GiB of copying); once whole, a few.
      expect(concat.mock.calls.length).toBeLessThan(50);
    } finally {
      concat.mockRestore();
    }
  });

  it('answers the upgrade with the AMQP subprotocol', async () => {
    const answer = await rawRequest(upgrade('/$servicebus/websocket', 'AMQPWSB10'));
    expect(answer).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(answer).toMatch(/\r\nSec-WebSocket-Protocol: AMQPWSB10\r\n/);
    // RFC 6455's example key/accept pair would need its own key; this one is computed the same way.
    expect(answer).toMatch(/\r\nSec-WebSocket-Accept: [A-Za-z0-9+/]{27}=\r\n/);
  });

  it('refuses upgrades elsewhere and other subprotocols, clearly', async () => {
    expect(await rawRequest(upgrade('/elsewhere', 'AMQPWSB10'))).toMatch(/^HTTP\/1\.1 404 Not Found[\s\S]*served at \/\$servicebus\/websocket/);
    expect(await rawRequest(upgrade('/$servicebus/websocket', 'mqtt'))).toMatch(/^HTTP\/1\.1 400 Bad Request[\s\S]*subprotocol must be AMQPWSB10/);
  });
});
