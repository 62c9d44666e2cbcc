import type { ServiceBusClient } from '@azure/service-bus';
import { npmAsTyped } from '@keyless/testing';
import rhea from 'rhea';
import { adminPeek, eventually, receiveExactly, rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

// Sending, receiving, peeking, expiry and scheduling with the unmodified SDK against the local broker.
describe('Service Bus sending and receiving', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
  });
  afterAll(() => bus.stop());

  /** Receives and completes everything left on `queue` (tests leave their queue empty for the next). */
  async function drainQueue(queue: string): Promise<void> {
    const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    while ((await receiver.receiveMessages(50, { maxWaitTimeInMs: 100 })).length);
    await receiver.close();
  }

  describe('when messages are sent', () => {
    afterEach(() => drainQueue('plain'));

    it('accepts a single message, an array and a batch, and delivers them in order with sequence numbers', async () => {
      const sender = client.createSender('plain');
      const before = Date.now();
      await sender.sendMessages({ body: 'single', messageId: 'm-1' });
      await sender.sendMessages([{ body: 'array-1' }, { body: 'array-2' }]);
      const batch = await sender.createMessageBatch();
      expect(batch.tryAddMessage({ body: { kind: 'batched' }, subject: 'batch', applicationProperties: { n: 7, ok: true } })).toBe(true);
      expect(batch.tryAddMessage({ body: Buffer.from([1, 2, 3]), contentType: 'application/octet-stream' })).toBe(true);
      await sender.sendMessages(batch);
      const after = Date.now();

      const receiver = client.createReceiver('plain');
      const received = await receiveExactly(receiver, 5);
      expect(received.map((m) => m.body)).toEqual(['single', 'array-1', 'array-2', { kind: 'batched' }, Buffer.from([1, 2, 3])]);
      const sequenceNumbers = received.map((m) => m.sequenceNumber!.toNumber());
      expect(sequenceNumbers).toEqual(sequenceNumbers.map((_, i) => sequenceNumbers[0]! + i));
      for (const message of received) {
        expect(message.enqueuedTimeUtc!.getTime()).toBeGreaterThanOrEqual(before - 1);
        expect(message.enqueuedTimeUtc!.getTime()).toBeLessThanOrEqual(after + 1);
        expect(message.deliveryCount).toBe(0);
        expect(message.lockedUntilUtc!.getTime()).toBeGreaterThan(Date.now());
        expect(message.state).toBe('active');
      }
      expect(received[3]).toMatchObject({ subject: 'batch', applicationProperties: { n: 7, ok: true } });
      expect(received[4]!.contentType).toBe('application/octet-stream');
      await Promise.all(received.map((m) => receiver.completeMessage(m)));
      await receiver.close();
    });

    it('keeps a single message as it was sent: the broker encodes no message for it', async () => {
      const sender = client.createSender('plain');
      await sender.sendMessages({ body: 'warm-up', messageId: 'single-0' }); // the link and its $cbs token are in place
      const message = rhea.message as unknown as { encode(value: unknown): Buffer };
      const encode = message.encode;
      let encodes = 0;
      message.encode = (value: unknown): Buffer => {
        encodes++;
        return encode(value);
      };
      try {
        for (let n = 1; n <= 5; n++) await sender.sendMessages({ body: { n }, messageId: `single-${n}`, subject: 'counted', applicationProperties: { n } });
      } finally {
        message.encode = encode;
      }
      // The SDK encodes each message once to send it; the broker used to encode each one again to store it.
      expect(encodes).toBe(5);
      const received = await receiveExactly(client.createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 6);
      expect(received.slice(1).map((m) => [m.messageId, m.subject, m.body, m.applicationProperties])).toEqual(
        [1, 2, 3, 4, 5].map((n) => [`single-${n}`, 'counted', { n }, { n }]),
      );
    });

    it('assigns a message id when the sender sets none and keeps the one it sets', async () => {
      const sender = client.createSender('plain');
      await sender.sendMessages([{ body: 'no id' }, { body: 'own id', messageId: 'order-42' }]);
      const [first, second] = await receiveExactly(client.createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 2);
      expect(first!.messageId).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
      expect(second!.messageId).toBe('order-42');
    });

    it('announces the namespace message size limit on the link, which the SDK uses as the batch size', async () => {
      const batch = await client.createSender('plain').createMessageBatch();
      expect(batch.maxSizeInBytes).toBe(262_144);
    });

    it('refuses a message above the limit with MessageSizeExceeded and keeps serving the link', async () => {
      const sender = client.createSender('plain');
      const error = await rejectionOf(sender.sendMessages({ body: Buffer.alloc(300 * 1024, 1) }));
      expect(error).toMatchObject({ name: 'ServiceBusError', code: 'MessageSizeExceeded' });
      expect(error.message).toMatch(/exceeds the limit \(262144 bytes\)/);
      await sender.sendMessages({ body: 'small enough' });
      const [message] = await receiveExactly(client.createReceiver('plain', { receiveMode: 'receiveAndDelete' }), 1);
      expect(message!.body).toBe('small enough');
    });

    it('drops a message whose id was seen within the duplicate detection window', async () => {
      const sender = client.createSender('dedupe');
      await sender.sendMessages({ body: 'first', messageId: 'same' });
      await sender.sendMessages([{ body: 'second', messageId: 'same' }, { body: 'other', messageId: 'other' }]);
      const receiver = client.createReceiver('dedupe', { receiveMode: 'receiveAndDelete' });
      const received = await receiveExactly(receiver, 2);
      expect(received.map((m) => m.body)).toEqual(['first', 'other']);
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toEqual([]);
    });

    it('refuses a message without session id on a session queue', async () => {
      const error = await rejectionOf(client.createSender('sessions').sendMessages({ body: 'no session' }));
      expect(error.message).toMatch(/SessionId was not set on a message/);
    });
  });

  describe('when an entity does not exist', () => {
    it('fails sending with MessagingEntityNotFound', async () => {
      const error = await rejectionOf(client.createSender('no-such-queue').sendMessages({ body: 'x' }));
      expect(error).toMatchObject({ code: 'MessagingEntityNotFound' });
      expect(error.message).toMatch(/The messaging entity 'sb:\/\/localhost\/no-such-queue' could not be found/);
      // The test's home is not the default one: the command the error points to must act on it, as printed.
      const list = /`([^`]*npm [^`]*)`/.exec(error.message)![1]!;
      expect(npmAsTyped(list, ['LOCAL_AZURE_HOME'])).toEqual({ args: ['run', 'local-azure', '--', 'servicebus', 'entity', 'list'], env: { LOCAL_AZURE_HOME: bus.test.home } });
    });

    it('fails receiving with MessagingEntityNotFound', async () => {
      const error = await rejectionOf(client.createReceiver('no-such-queue').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
      expect(error).toMatchObject({ code: 'MessagingEntityNotFound' });
    });

    it('fails receiving from a topic (only its subscriptions hold messages)', async () => {
      const error = await rejectionOf(client.createReceiver('events').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
      expect(error.message).toMatch(/receive from one of its subscriptions/);
    });
  });

  describe('when receiving', () => {
    afterEach(() => drainQueue('plain'));

    it('removes messages on receive in receiveAndDelete mode', async () => {
      await client.createSender('plain').sendMessages([{ body: 1 }, { body: 2 }]);
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      const received = await receiveExactly(receiver, 2);
      expect(received.map((m) => [m.body, m.lockToken])).toEqual([
        [1, undefined],
        [2, undefined],
      ]);
      expect(await client.createReceiver('plain').peekMessages(10)).toEqual([]);
    });

    it('streams messages to subscribe() handlers and completes them after the handler returns', async () => {
      await client.createSender('plain').sendMessages([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
      const receiver = client.createReceiver('plain');
      const seen: unknown[] = [];
      await new Promise<void>((resolve, reject) => {
        const subscription = receiver.subscribe(
          {
            processMessage: async (message) => {
              seen.push(message.body);
              if (seen.length === 3) void subscription.close().then(resolve);
            },
            processError: async ({ error }) => reject(error),
          },
          { maxConcurrentCalls: 2 },
        );
      });
      expect(seen.sort()).toEqual(['a', 'b', 'c']);
      // Completion is acknowledged before subscribe() hands out the next credit; nothing is left.
      expect(await client.createReceiver('plain').peekMessages(10)).toEqual([]);
    });

    it('answers drains, so receiveMessages keeps its link from call to call', async () => {
      const receiver = client.createReceiver('plain');
      const attachesBefore = receiveAttaches('plain');
      for (const body of ['one', 'two']) {
        await client.createSender('plain').sendMessages({ body });
        // One message for ten credits: the SDK drains the other nine before it returns.
        const received = await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 });
        expect(received.map((m) => m.body)).toEqual([body]);
        await receiver.completeMessage(received[0]!);
      }
      // An unanswered drain makes the SDK close the link and attach a new one for the next call.
      expect(receiveAttaches('plain') - attachesBefore).toBe(1);
      await receiver.close();
    });

    it('keeps delivering on one link past the 2048 deliveries rhea buffers per session', async () => {
      const total = 2200;
      const sender = client.createSender('plain');
      for (let sent = 0; sent < total; sent += 200) await sender.sendMessages(Array.from({ length: 200 }, (_, i) => ({ body: sent + i })));
      const receiver = client.createReceiver('plain');
      let completed = 0;
      while (completed < total) {
        const batch = await receiver.receiveMessages(200, { maxWaitTimeInMs: 2000 });
        expect(batch.length).toBeGreaterThan(0);
        await Promise.all(batch.map((m) => receiver.completeMessage(m)));
        completed += batch.length;
      }
      expect(completed).toBe(total);
    }, 30_000);

    it('peeks without locking, continuing where the last peek ended, including deferred and scheduled messages', async () => {
      const sender = client.createSender('plain');
      await sender.sendMessages([{ body: 'p1' }, { body: 'p2' }, { body: 'p3' }]);
      await sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 60_000));
      const receiver = client.createReceiver('plain');
      const first = await receiver.peekMessages(2);
      const rest = await receiver.peekMessages(10);
      expect(first.map((m) => m.body)).toEqual(['p1', 'p2']);
      expect(rest.map((m) => [m.body, m.state])).toEqual([
        ['p3', 'active'],
        ['later', 'scheduled'],
      ]);
      expect(first[0]!.lockToken).toBeUndefined();
      const fromStart = await receiver.peekMessages(1, { fromSequenceNumber: first[1]!.sequenceNumber! });
      expect(fromStart.map((m) => m.body)).toEqual(['p2']);
      // Peeking locked nothing: all three are still receivable at once.
      const received = await receiveExactly(receiver, 3);
      expect(received.map((m) => m.body)).toEqual(['p1', 'p2', 'p3']);
      await Promise.all(received.map((m) => receiver.completeMessage(m)));
      await sender.cancelScheduledMessages(rest[1]!.sequenceNumber!);
    });
  });

  describe('when messages have a time to live', () => {
    it('moves an expired message to the dead-letter queue when the queue dead-letters on expiration', async () => {
      await client.createSender('orders').sendMessages({ body: 'short-lived', timeToLive: 200 });
      const deadLetters = client.createReceiver('orders', { subQueueType: 'deadLetter' });
      const [expired] = await receiveExactly(deadLetters, 1, 5000);
      expect(expired).toMatchObject({ body: 'short-lived', deadLetterReason: 'TTLExpiredException', timeToLive: 200 });
      expect(expired!.expiresAtUtc!.getTime() - expired!.enqueuedTimeUtc!.getTime()).toBe(200);
      await deadLetters.completeMessage(expired!);
    });

    it('drops an expired message when the queue does not dead-letter on expiration', async () => {
      await client.createSender('plain').sendMessages([{ body: 'gone', messageId: 'gone', timeToLive: 100 }, { body: 'kept' }]);
      await eventually(async () => ((await adminPeek(bus, 'plain')).some((m) => m.messageId === 'gone') ? undefined : true), 3000, 'the expired message to go');
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      expect((await receiver.receiveMessages(10, { maxWaitTimeInMs: 500 })).map((m) => m.body)).toEqual(['kept']);
      expect(await client.createReceiver('plain', { subQueueType: 'deadLetter' }).peekMessages(10)).toEqual([]);
    });
  });

  describe('when messages are scheduled', () => {
    it('delivers a message with a scheduled enqueue time no earlier than that time', async () => {
      const at = new Date(Date.now() + 800);
      await client.createSender('plain').sendMessages({ body: 'on time', scheduledEnqueueTimeUtc: at });
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      const [peeked] = await receiver.peekMessages(1);
      expect(peeked).toMatchObject({ body: 'on time', state: 'scheduled' });
      const [message] = await receiveExactly(receiver, 1, 5000);
      expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
      expect(message!.scheduledEnqueueTimeUtc).toEqual(at);
      expect(message!.enqueuedTimeUtc).toEqual(at);
    });

    it('schedules through $management with sequence numbers and cancels by them', async () => {
      const sender = client.createSender('plain');
      const at = new Date(Date.now() + 400);
      const [kept, cancelled] = await sender.scheduleMessages([{ body: 'kept' }, { body: 'cancelled' }], at);
      expect(cancelled!.toNumber()).toBe(kept!.toNumber() + 1);
      await sender.cancelScheduledMessages(cancelled!);
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      const [message] = await receiveExactly(receiver, 1, 5000);
      expect(message).toMatchObject({ body: 'kept' });
      expect(message!.sequenceNumber!.toNumber()).toBe(kept!.toNumber());
      expect(await receiver.peekMessages(10)).toEqual([]);
    });
  });

  /** How many receive links were authorized on `entity` (one RBAC decision per attach). */
  function receiveAttaches(entity: string): number {
    return bus.test.azure.auditLog.authorizations({ limit: 10_000 }).filter((r) => r.operation === `receive from ${entity}`).length;
  }
});
