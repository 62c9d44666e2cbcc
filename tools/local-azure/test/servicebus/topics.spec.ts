import type { ServiceBusClient, ServiceBusMessage } from '@azure/service-bus';
import { adminPeek, eventually, receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

// Topic fan-out through correlation and SQL filters, rule actions, auto-forwarding and subscription
// dead-letter queues (entities in fixtures/test-topology.json).
describe('Service Bus topics and subscriptions', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
  });
  afterAll(() => bus.stop());

  it('counts the topology in its start-up line, one topic in the singular', () => {
    expect(bus.test.azure.resourceEndpoint('serviceBus')).toMatch(/ — 11 queues, 1 topic, 6 subscriptions from /);
  });

  async function bodiesOf(subscription: string, expected: number): Promise<unknown[]> {
    const receiver = client.createReceiver('events', subscription, { receiveMode: 'receiveAndDelete' });
    const received = expected ? await receiveExactly(receiver, expected) : [];
    expect(await receiver.receiveMessages(10, { maxWaitTimeInMs: 100 })).toEqual([]);
    await receiver.close();
    return received.map((m) => m.body);
  }

  describe('when messages are published', () => {
    const published: ServiceBusMessage[] = [
      { body: 'red-10', applicationProperties: { color: 'red', quantity: 10 } },
      { body: 'red-2', applicationProperties: { color: 'red', quantity: 2 } },
      { body: 'blue-10', applicationProperties: { color: 'blue', quantity: 10 } },
      { body: 'eu-created', subject: 'order.created', applicationProperties: { region: 'eu', quantity: 4, secret: 's3cr3t' } },
      { body: 'us-created', subject: 'order.created', applicationProperties: { region: 'us', quantity: 1 } },
      { body: 'internal-order', subject: 'order.shipped', applicationProperties: { internal: true } },
    ];
    let sequenceNumbers: Map<unknown, number>;

    beforeAll(async () => {
      await client.createSender('events').sendMessages(published);
      const all = await receiveExactly(client.createReceiver('events', 'all'), published.length);
      sequenceNumbers = new Map(all.map((m) => [m.body, m.sequenceNumber!.toNumber()]));
      await Promise.all(all.map((m) => client.createReceiver('events', 'all').completeMessage(m)));
    });

    it('gives every message to a subscription without rules ($Default, 1=1), with the topic’s sequence numbers', () => {
      expect([...sequenceNumbers.keys()]).toEqual(published.map((m) => m.body));
      const numbers = [...sequenceNumbers.values()];
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    });

    it('gives every message to a subscription written "Rules": [] in the topology file ($Default, as the official emulator does)', async () => {
      expect(await bodiesOf('empty-rules', published.length)).toEqual(published.map((m) => m.body));
    });

    it('filters with SQL (color = \'red\' AND quantity > 5)', async () => {
      expect(await bodiesOf('red-bulk', 1)).toEqual(['red-10']);
    });

    it('filters with a correlation filter on the label and an application property', async () => {
      expect(await bodiesOf('eu-orders', 1)).toEqual(['eu-created']);
    });

    it('applies the rule action (SET and REMOVE) to the subscription’s copy only', async () => {
      const receiver = client.createReceiver('events', 'stamped', { receiveMode: 'receiveAndDelete' });
      const received = await receiveExactly(receiver, 2);
      expect(received.map((m) => [m.body, m.applicationProperties])).toEqual([
        ['eu-created', { region: 'eu', quantity: 4, stamped: 'yes', doubled: 8 }],
        ['us-created', { region: 'us', quantity: 1, stamped: 'yes', doubled: 2 }],
      ]);
      expect(received[0]!.sequenceNumber!.toNumber()).toBe(sequenceNumbers.get('eu-created'));
    });
  });

  it('reads the 64-bit integer properties of a batch as sent (a rule action computes with them)', async () => {
    // The SDK encodes integers below -2^31 as AMQP longs (0x81), as .NET does every long property.
    const quantity = -5_000_000_000;
    await client.createSender('events').sendMessages([{ body: 'long-order', subject: 'order.created', applicationProperties: { quantity } }]);
    const [stamped] = await receiveExactly(client.createReceiver('events', 'stamped', { receiveMode: 'receiveAndDelete' }), 1);
    expect(stamped!.applicationProperties).toEqual({ quantity, stamped: 'yes', doubled: quantity * 2 });
    expect(await bodiesOf('all', 1)).toEqual(['long-order']);
    expect(await bodiesOf('empty-rules', 1)).toEqual(['long-order']);
  });

  it('forwards matching messages from a subscription to a queue (ForwardTo)', async () => {
    await client.createSender('events').sendMessages({ body: 'travel', subject: 'forward.me' });
    const [forwarded] = await receiveExactly(client.createReceiver('forwarded', { receiveMode: 'receiveAndDelete' }), 1);
    expect(forwarded).toMatchObject({ body: 'travel', subject: 'forward.me' });
    expect(await adminPeek(bus, 'events/to-queue')).toEqual([]);
    await bodiesOf('all', 1);
  });

  it('forwards every message sent to a forwarding queue', async () => {
    await client.createSender('forwarder').sendMessages([{ body: 'a' }, { body: 'b' }]);
    const received = await receiveExactly(client.createReceiver('forwarded', { receiveMode: 'receiveAndDelete' }), 2);
    expect(received.map((m) => m.body)).toEqual(['a', 'b']);
    expect(await adminPeek(bus, 'forwarder')).toEqual([]);
  });

  it('forwards dead-lettered messages to ForwardDeadLetteredMessagesTo, naming their source', async () => {
    await client.createSender('dead-letters-forwarded').sendMessages({ body: 'unlucky' });
    const receiver = client.createReceiver('dead-letters-forwarded');
    const [message] = await receiveExactly(receiver, 1);
    await receiver.abandonMessage(message!);
    const [forwarded] = await receiveExactly(client.createReceiver('forwarded', { receiveMode: 'receiveAndDelete' }), 1);
    expect(forwarded).toMatchObject({ body: 'unlucky', deadLetterReason: 'MaxDeliveryCountExceeded', deadLetterSource: 'dead-letters-forwarded' });
    expect(await adminPeek(bus, 'dead-letters-forwarded', { deadLetter: true })).toEqual([]);
  });

  it('keeps a subscription’s dead letters in its own dead-letter queue', async () => {
    await client.createSender('events').sendMessages({ body: 'bad event', applicationProperties: { color: 'red', quantity: 99 } });
    const receiver = client.createReceiver('events', 'red-bulk');
    const [message] = await receiveExactly(receiver, 1);
    await receiver.deadLetterMessage(message!, { deadLetterReason: 'Unprocessable', deadLetterErrorDescription: 'quantity out of range' });
    const deadLetters = client.createReceiver('events', 'red-bulk', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' });
    const [dead] = await receiveExactly(deadLetters, 1);
    expect(dead).toMatchObject({ body: 'bad event', deadLetterReason: 'Unprocessable' });
    await eventually(async () => ((await adminPeek(bus, 'events/all')).length === 1 ? true : undefined));
    await bodiesOf('all', 1);
  });
});
