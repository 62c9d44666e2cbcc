import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusSessionReceiver } from '@azure/service-bus';
import { receiveExactly, rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

// Sessions: named and next-available sessions, session locks and their renewal and expiry, session state.
describe('Service Bus sessions', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  /** Session lock expiry takes the 5-second lock duration: started first, checked in its own test. */
  let sessionExpiry: Promise<{ message: ServiceBusReceivedMessage; error: Error & { code?: string }; receiver: ServiceBusSessionReceiver }>;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    sessionExpiry = (async () => {
      await client.createSender('session-expiry').sendMessages({ body: 'held too long', sessionId: 'slow' });
      // No automatic renewal: the session lock runs out after the queue's lock duration.
      const receiver = await client.acceptSession('session-expiry', 'slow', { maxAutoLockRenewalDurationInMs: 0 });
      const [message] = await receiveExactly(receiver, 1);
      const error = await new Promise<Error & { code?: string }>((resolve) => {
        receiver.subscribe({ processMessage: async () => undefined, processError: async ({ error }) => resolve(error as Error & { code?: string }) });
      });
      return { message: message!, error, receiver };
    })();
    sessionExpiry.catch(() => undefined);
  });
  afterAll(() => bus.stop());

  it('gives a named session only that session’s messages, in order', async () => {
    await client.createSender('sessions').sendMessages([
      { body: 'a1', sessionId: 'alpha' },
      { body: 'b1', sessionId: 'beta' },
      { body: 'a2', sessionId: 'alpha' },
    ]);
    const alpha = await client.acceptSession('sessions', 'alpha');
    expect(alpha.sessionId).toBe('alpha');
    expect(alpha.sessionLockedUntilUtc!.getTime()).toBeGreaterThan(Date.now() + 3000);
    const received = await receiveExactly(alpha, 2);
    expect(received.map((m) => [m.body, m.sessionId])).toEqual([
      ['a1', 'alpha'],
      ['a2', 'alpha'],
    ]);
    await Promise.all(received.map((m) => alpha.completeMessage(m)));
    await alpha.close();
  });

  it('accepts the next session that has messages', async () => {
    const next = await client.acceptNextSession('sessions');
    expect(next.sessionId).toBe('beta');
    const [message] = await receiveExactly(next, 1);
    expect(message!.body).toBe('b1');
    await next.completeMessage(message!);
    await next.close();
  });

  it('waits for a session to get messages when none has any yet', async () => {
    const accepting = bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 5000 } }).acceptNextSession('sessions');
    await client.createSender('sessions').sendMessages({ body: 'late', sessionId: 'gamma' });
    const receiver = await accepting;
    expect(receiver.sessionId).toBe('gamma');
    const [message] = await receiveExactly(receiver, 1);
    await receiver.completeMessage(message!);
    await receiver.close();
  });

  it('fails accepting the next session with ServiceTimeout when none gets messages in time', async () => {
    const started = Date.now();
    const error = await rejectionOf(bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 1000 } }).acceptNextSession('sessions'));
    expect(error).toMatchObject({ code: 'ServiceTimeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('refuses a session locked by another receiver with SessionCannotBeLocked', async () => {
    const holder = await client.acceptSession('sessions', 'delta');
    const error = await rejectionOf(bus.client().acceptSession('sessions', 'delta'));
    expect(error).toMatchObject({ code: 'SessionCannotBeLocked' });
    await holder.close();
    // Closing the holder releases the session.
    const second = await bus.client().acceptSession('sessions', 'delta');
    await second.close();
  });

  it('keeps session state across receivers', async () => {
    const first = await client.acceptSession('sessions', 'stateful');
    expect(await first.getSessionState()).toBeNull();
    await first.setSessionState({ step: 3, items: ['x'] });
    expect(await first.getSessionState()).toEqual({ step: 3, items: ['x'] });
    await first.close();
    const second = await client.acceptSession('sessions', 'stateful');
    expect(await second.getSessionState()).toEqual({ step: 3, items: ['x'] });
    await second.setSessionState(null);
    expect(await second.getSessionState()).toBeNull();
    await second.close();
  });

  it('renews the session lock', async () => {
    const receiver = await client.acceptSession('sessions', 'renewed', { maxAutoLockRenewalDurationInMs: 0 });
    const before = receiver.sessionLockedUntilUtc!.getTime();
    const renewed = await receiver.renewSessionLock();
    expect(renewed.getTime()).toBeGreaterThanOrEqual(before);
    expect(receiver.sessionLockedUntilUtc).toEqual(renewed);
    await receiver.close();
  });

  it('returns a closed session’s unsettled messages for the next receiver, with the delivery count raised', async () => {
    await client.createSender('sessions').sendMessages({ body: 'unsettled', sessionId: 'epsilon' });
    const first = await client.acceptSession('sessions', 'epsilon');
    const [message] = await receiveExactly(first, 1);
    expect(message!.deliveryCount).toBe(0);
    await first.close();
    const second = await client.acceptSession('sessions', 'epsilon');
    const [again] = await receiveExactly(second, 1);
    expect(again).toMatchObject({ body: 'unsettled', deliveryCount: 1 });
    await second.completeMessage(again!);
    await second.close();
  });

  it('defers session messages and receives them by sequence number within the session', async () => {
    await client.createSender('sessions').sendMessages({ body: 'park me', sessionId: 'zeta' });
    const receiver = await client.acceptSession('sessions', 'zeta');
    const [message] = await receiveExactly(receiver, 1);
    await receiver.deferMessage(message!);
    const [deferred] = await receiver.receiveDeferredMessages(message!.sequenceNumber!);
    expect(deferred).toMatchObject({ body: 'park me', state: 'deferred', sessionId: 'zeta' });
    await receiver.completeMessage(deferred!);
    expect(await receiver.peekMessages(10)).toEqual([]);
    await receiver.close();
  });

  it('refuses a plain receiver on a session queue', async () => {
    const error = await rejectionOf(client.createReceiver('sessions').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
    expect(error.message).toMatch(/requires sessions/);
  });

  it('dead-letters a session message into a dead-letter queue that a plain receiver reads, with its session id and reason', async () => {
    await client.createSender('sessions').sendMessages({ body: 'poison', sessionId: 'delta', messageId: 'poison-1' });
    const session = await client.acceptSession('sessions', 'delta');
    const [message] = await receiveExactly(session, 1);
    await session.deadLetterMessage(message!, { deadLetterReason: 'Unprocessable', deadLetterErrorDescription: 'no handler for it' });
    await session.close();
    // In Azure the dead-letter queue of a session-enabled entity does not require sessions: DLQ tools read it with
    // an ordinary receiver, and a session receiver cannot be created on it.
    const deadLetters = client.createReceiver('sessions', { subQueueType: 'deadLetter' });
    expect((await deadLetters.peekMessages(10)).map((m) => [m.messageId, m.sessionId])).toEqual([['poison-1', 'delta']]);
    const [dead] = await receiveExactly(deadLetters, 1);
    expect(dead).toMatchObject({ body: 'poison', sessionId: 'delta', deadLetterReason: 'Unprocessable', deadLetterErrorDescription: 'no handler for it' });
    await deadLetters.completeMessage(dead!);
    expect(await deadLetters.peekMessages(10)).toEqual([]);
    await deadLetters.close();
  });

  it('takes the session away when its lock expires: SessionLockLost, and settling fails', async () => {
    const { message, error, receiver } = await sessionExpiry;
    expect(error).toMatchObject({ code: 'SessionLockLost' });
    const settlement = await rejectionOf(receiver.completeMessage(message));
    expect(settlement).toMatchObject({ code: 'SessionLockLost' });
    // The message is back in its session for the next receiver.
    const next = await client.acceptSession('session-expiry', 'slow');
    const [again] = await receiveExactly(next, 1);
    expect(again).toMatchObject({ body: 'held too long', deliveryCount: 1 });
    await next.completeMessage(again!);
  }, 15_000);
});
