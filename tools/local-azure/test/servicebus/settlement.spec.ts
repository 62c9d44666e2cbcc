import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import { adminPeek, receiveExactly, rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

// Locks and settlement: complete, abandon, defer, dead-letter, renewal, expiry and redelivery.
describe('Service Bus settlement', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  /** Lock expiry takes the queue's 5-second lock duration: started first, checked in its own test. */
  let lockExpiry: Promise<{ first: ServiceBusReceivedMessage; again: ServiceBusReceivedMessage; receiver: ServiceBusReceiver }>;
  /** The same in a dead-letter queue, after the message was abandoned there MaxDeliveryCount times. */
  let deadLetterLockExpiry: typeof lockExpiry;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    lockExpiry = (async () => {
      await client.createSender('lock-expiry').sendMessages({ body: 'slow consumer', messageId: 'slow' });
      // The SDK renews locks of received messages by itself for 5 minutes unless told not to.
      const receiver = client.createReceiver('lock-expiry', { maxAutoLockRenewalDurationInMs: 0 });
      const [first] = await receiveExactly(receiver, 1);
      const [again] = await receiveExactly(receiver, 1, 10_000);
      return { first: first!, again: again!, receiver };
    })();
    lockExpiry.catch(() => undefined);
    deadLetterLockExpiry = (async () => {
      const queue = 'dead-letter-lock-expiry';
      await client.createSender(queue).sendMessages({ body: 'poison', messageId: 'poison' });
      const active = client.createReceiver(queue);
      const [message] = await receiveExactly(active, 1);
      await active.deadLetterMessage(message!, { deadLetterReason: 'Unprocessable', deadLetterErrorDescription: 'no handler for it' });
      const receiver = client.createReceiver(queue, { subQueueType: 'deadLetter', maxAutoLockRenewalDurationInMs: 0 });
      // Abandoned MaxDeliveryCount (2) times: in the active queue the next failed delivery would dead-letter it.
      for (let i = 0; i < 2; i++) await receiver.abandonMessage((await receiveExactly(receiver, 1))[0]!);
      const [first] = await receiveExactly(receiver, 1);
      const [again] = await receiveExactly(receiver, 1, 10_000);
      return { first: first!, again: again!, receiver };
    })();
    deadLetterLockExpiry.catch(() => undefined);
  });
  afterAll(() => bus.stop());

  async function sendAndReceive(body: unknown, queue = 'orders'): Promise<{ message: ServiceBusReceivedMessage; receiver: ServiceBusReceiver }> {
    await client.createSender(queue).sendMessages({ body });
    const receiver = client.createReceiver(queue);
    const [message] = await receiveExactly(receiver, 1);
    return { message: message!, receiver };
  }

  it('removes a completed message', async () => {
    const { message, receiver } = await sendAndReceive('done');
    await receiver.completeMessage(message);
    expect(await adminPeek(bus, 'orders')).toEqual([]);
  });

  it('redelivers an abandoned message with its delivery count raised and the modified properties', async () => {
    const { message, receiver } = await sendAndReceive('retry me');
    expect(message.deliveryCount).toBe(0);
    await receiver.abandonMessage(message, { attempt: 'first', reason: 'transient' });
    const [again] = await receiveExactly(receiver, 1);
    expect(again).toMatchObject({ body: 'retry me', deliveryCount: 1, applicationProperties: { attempt: 'first', reason: 'transient' } });
    expect(again!.sequenceNumber!.toNumber()).toBe(message.sequenceNumber!.toNumber());
    expect(again!.lockToken).not.toBe(message.lockToken);
    await receiver.completeMessage(again!);
  });

  it('dead-letters a message abandoned MaxDeliveryCount times with MaxDeliveryCountExceeded', async () => {
    const { message, receiver } = await sendAndReceive('poison');
    await receiver.abandonMessage(message);
    for (let attempt = 1; attempt < 3; attempt++) {
      const [again] = await receiveExactly(receiver, 1);
      expect(again!.deliveryCount).toBe(attempt);
      await receiver.abandonMessage(again!);
    }
    const deadLetters = client.createReceiver('orders', { subQueueType: 'deadLetter' });
    const [dead] = await receiveExactly(deadLetters, 1);
    expect(dead).toMatchObject({
      body: 'poison',
      deliveryCount: 3,
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deadLetterErrorDescription: 'Message could not be consumed after 3 delivery attempts.',
    });
    await deadLetters.completeMessage(dead!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 100 })).toEqual([]);
  });

  it('dead-letters with the receiver’s reason, description and properties, into the dead-letter sub-queue', async () => {
    const { message, receiver } = await sendAndReceive({ order: 7 });
    await receiver.deadLetterMessage(message, { deadLetterReason: 'ValidationFailed', deadLetterErrorDescription: 'order 7 has no items', checkedBy: 'validator' });
    const deadLetters = client.createReceiver('orders', { subQueueType: 'deadLetter' });
    const [dead] = await receiveExactly(deadLetters, 1);
    expect(dead).toMatchObject({
      body: { order: 7 },
      deadLetterReason: 'ValidationFailed',
      deadLetterErrorDescription: 'order 7 has no items',
      applicationProperties: { checkedBy: 'validator' },
    });
    expect(dead!.sequenceNumber!.toNumber()).toBe(message.sequenceNumber!.toNumber());
    expect(await adminPeek(bus, 'orders', { deadLetter: true })).toEqual([expect.objectContaining({ deadLetterReason: 'ValidationFailed', state: 'locked' })]);
    await deadLetters.completeMessage(dead!);
  });

  it('defers a message that only receiveDeferredMessages gets back, settled through $management', async () => {
    const { message, receiver } = await sendAndReceive('later please');
    await receiver.deferMessage(message, { deferredBy: 'test' });
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 100 })).toEqual([]);
    const [deferred] = await receiver.receiveDeferredMessages(message.sequenceNumber!);
    expect(deferred).toMatchObject({ body: 'later please', state: 'deferred', applicationProperties: { deferredBy: 'test' } });
    expect(deferred!.lockToken).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    await receiver.completeMessage(deferred!);
    expect(await adminPeek(bus, 'orders')).toEqual([]);
  });

  it('fails receiveDeferredMessages for a sequence number that is not deferred with MessageNotFound', async () => {
    const { message, receiver } = await sendAndReceive('not deferred');
    const error = await rejectionOf(receiver.receiveDeferredMessages(message.sequenceNumber!));
    expect(error).toMatchObject({ code: 'MessageNotFound' });
    await receiver.completeMessage(message);
  });

  it('renews a message lock, extending its expiry by the lock duration', async () => {
    const { message, receiver } = await sendAndReceive('long job');
    const before = message.lockedUntilUtc!.getTime();
    const renewed = await receiver.renewMessageLock(message);
    expect(renewed.getTime()).toBeGreaterThanOrEqual(before);
    expect(renewed.getTime()).toBeGreaterThan(Date.now() + 2000);
    expect(message.lockedUntilUtc).toEqual(renewed);
    await receiver.completeMessage(message);
  });

  it('fails renewing the lock of a completed message with MessageLockLost', async () => {
    const { message, receiver } = await sendAndReceive('once');
    await receiver.completeMessage(message);
    const renewal = await rejectionOf(receiver.renewMessageLock(message));
    expect(renewal).toMatchObject({ code: 'MessageLockLost' });
  });

  it('settles through $management when the receive link is gone (the SDK falls back to update-disposition)', async () => {
    const { message } = await sendAndReceive('fallback');
    // A second receiver on another connection has no link for this delivery: only the lock token counts.
    const other = bus.client().createReceiver('orders');
    await other.completeMessage(message);
    expect(await adminPeek(bus, 'orders')).toEqual([]);
  });

  it('redelivers a message whose lock expired, with delivery count 1, and refuses the stale lock with MessageLockLost', async () => {
    const { first, again, receiver } = await lockExpiry;
    expect(first.deliveryCount).toBe(0);
    expect(again).toMatchObject({ messageId: 'slow', deliveryCount: 1 });
    expect(again.lockToken).not.toBe(first.lockToken);
    const error = await rejectionOf(receiver.completeMessage(first));
    expect(error).toMatchObject({ code: 'MessageLockLost' });
    await receiver.completeMessage(again);
  }, 15_000);

  it('makes a dead-lettered message whose lock expired available again in the dead-letter queue, delivery count raised, past MaxDeliveryCount', async () => {
    const { first, again, receiver } = await deadLetterLockExpiry;
    expect(first.deliveryCount).toBeGreaterThanOrEqual(2);
    expect(again).toMatchObject({ messageId: 'poison', deadLetterReason: 'Unprocessable', deliveryCount: first.deliveryCount! + 1 });
    expect(again.sequenceNumber!.toNumber()).toBe(first.sequenceNumber!.toNumber());
    expect(again.lockToken).not.toBe(first.lockToken);
    expect(await rejectionOf(receiver.completeMessage(first))).toMatchObject({ code: 'MessageLockLost' });
    // Neither lost nor moved: MaxDeliveryCount does not apply to a dead-letter queue, and nothing went back to the queue.
    expect(await adminPeek(bus, 'dead-letter-lock-expiry')).toEqual([]);
    expect(await adminPeek(bus, 'dead-letter-lock-expiry', { deadLetter: true })).toEqual([expect.objectContaining({ messageId: 'poison', state: 'locked' })]);
    await receiver.completeMessage(again);
    expect(await adminPeek(bus, 'dead-letter-lock-expiry', { deadLetter: true })).toEqual([]);
  }, 15_000);
});
