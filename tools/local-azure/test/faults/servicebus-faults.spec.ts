import type { ServiceBusClient } from '@azure/service-bus';
import type { ServiceBusStatus } from '../../src/servicebus/admin-routes.js';
import { adminPeek, eventually, receiveExactly, rejectionOf, shortRetries, startServiceBus, type TestServiceBus } from '../servicebus/support.js';

/** Whether a promise has settled yet, without waiting for it. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  return (await Promise.race([promise.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(marker)))])) !== marker;
}

// The Service Bus faults with the unmodified SDK: what a client sees while each is held, and that healing is
// enough — the same client objects carry on, nothing is restarted.
describe('Injected Service Bus faults', () => {
  let bus: TestServiceBus;
  const faults = () => bus.test.azure.faults;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
  });
  afterEach(() => faults().clear());
  afterAll(() => bus.stop());

  /** A client that has connected (one message sent and taken back). */
  async function connectedClient(queue = 'plain'): Promise<ServiceBusClient> {
    const client = bus.client();
    await client.createSender(queue).sendMessages({ body: 'warm-up' });
    const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
    await receiveExactly(receiver, 1);
    await receiver.close();
    return client;
  }

  describe('servicebus-cbs', () => {
    it('refuse: a new link is refused as unauthorized; after none the same client sends', async () => {
      const client = bus.client();
      const sender = client.createSender('plain');
      await faults().set('servicebus-cbs', { mode: 'refuse' });
      const refused = await rejectionOf(sender.sendMessages({ body: 'during' }));
      expect(refused.code).toBe('UnauthorizedAccess');
      await faults().set('servicebus-cbs', { mode: 'none' });
      await sender.sendMessages({ body: 'after' });
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      expect((await receiveExactly(receiver, 1)).map((m) => m.body)).toEqual(['after']);
      await receiver.close();
    });

    it('delay: put-token answers after the delay, and the link then works', async () => {
      await faults().set('servicebus-cbs', { mode: 'delay', delayInMs: 1200 });
      const started = Date.now();
      await bus.client().createSender('plain').sendMessages({ body: 'slow token' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
      const receiver = bus.client().createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      await faults().set('servicebus-cbs', { mode: 'none' });
      expect((await receiveExactly(receiver, 1)).map((m) => m.body)).toEqual(['slow token']);
      await receiver.close();
    });
  });

  describe('servicebus-connections', () => {
    it('drop: open connections are reset and new ones too; after none the same client reconnects by itself', async () => {
      const client = await connectedClient();
      const sender = client.createSender('plain');
      await sender.sendMessages({ body: 'before' });
      await faults().set('servicebus-connections', { mode: 'drop' });
      await expect(sender.sendMessages({ body: 'during' })).rejects.toThrow();
      // The broker forgets a connection it reset (no AMQP close, no end from the peer): rhea sees it disconnected,
      // which also ends its 4-minute idle timer, which otherwise kept the process alive after the local Azure stopped.
      const connections = async (): Promise<number> => (await bus.test.admin().call<ServiceBusStatus>('GET', '/servicebus')).connections;
      await eventually(async () => ((await connections()) === 0 ? true : undefined), 10_000, 'no connection left after the drop');
      await faults().set('servicebus-connections', { mode: 'none' });
      await eventually(() => sender.sendMessages({ body: 'after' }).then(() => true, () => undefined), 10_000, 'a send after the heal');
      const bodies = (await adminPeek(bus, 'plain')).map((m) => JSON.parse(m.body!) as string);
      expect(bodies).toEqual(expect.arrayContaining(['before', 'after']));
      expect(bodies).not.toContain('during');
      const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
      await receiveExactly(receiver, bodies.length);
      await receiver.close();
    }, 30_000);

    it('half-open: a send on a frozen connection gets no answer (a timeout, not an error from the broker); after none it reconnects', async () => {
      const client = await connectedClient('orders');
      const sender = client.createSender('orders');
      await sender.sendMessages({ body: 'before' });
      await faults().set('servicebus-connections', { mode: 'half-open' });
      const silent = await rejectionOf(sender.sendMessages({ body: 'into the void' }));
      expect(silent.code).toMatch(/ServiceTimeout|OperationTimeout/);
      await faults().set('servicebus-connections', { mode: 'none' });
      // The heal resets the frozen connection; the SDK then reconnects (TLS, a token, the link) one 5 s try at a time,
      // which took more than 15 s in a CI run on a machine loaded far past its two cores. What counts is that it does.
      await eventually(() => sender.sendMessages({ body: 'after' }).then(() => true, () => undefined), 30_000, 'a send after the heal');
      const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
      const received = (await receiveExactly(receiver, 2, 10_000)).map((m) => m.body);
      expect(received).toEqual(expect.arrayContaining(['before', 'after']));
      await receiver.close();
    }, 60_000);
  });

  describe('servicebus-credit stall', () => {
    it('delivers nothing to a receiver with credit while it holds, then everything', async () => {
      const client = await connectedClient('lock-expiry');
      await client.createSender('lock-expiry').sendMessages([{ body: 'one' }, { body: 'two' }]);
      const receiver = client.createReceiver('lock-expiry', { receiveMode: 'receiveAndDelete' });
      await faults().set('servicebus-credit', { mode: 'stall' });
      expect(await receiver.receiveMessages(2, { maxWaitTimeInMs: 1_000 })).toEqual([]);
      expect((await adminPeek(bus, 'lock-expiry')).length).toBe(2);
      await faults().set('servicebus-credit', { mode: 'none' });
      expect((await receiveExactly(receiver, 2)).map((m) => m.body).sort()).toEqual(['one', 'two']);
      await receiver.close();
    });

    it('grants a sender no new credit: it sends what it holds, then waits; after none it goes on', async () => {
      const client = bus.client({ retryOptions: { ...shortRetries.retryOptions, timeoutInMs: 3_000 } });
      const sender = client.createSender('dedupe');
      await sender.sendMessages({ body: 'attach', messageId: 'attach' });
      await faults().set('servicebus-credit', { mode: 'stall' });
      // The broker grants 500 credits per sender link; at most that many sends go through during the stall.
      const results = await Promise.allSettled(Array.from({ length: 520 }, (_, i) => sender.sendMessages({ body: i, messageId: `m-${i}` })));
      const refused = results.filter((r) => r.status === 'rejected');
      expect(refused.length).toBeGreaterThanOrEqual(20);
      await faults().set('servicebus-credit', { mode: 'none' });
      await sender.sendMessages({ body: 'after', messageId: 'after' });
      await sender.close();
      const receiver = client.createReceiver('dedupe', { receiveMode: 'receiveAndDelete' });
      await receiveExactly(receiver, (await adminPeek(bus, 'dedupe')).length, 10_000);
      await receiver.close();
    }, 30_000);
  });

  describe('servicebus-session-lock expire', () => {
    it('expires a held session lock at once and refuses renewals until none; the session can then be accepted again', async () => {
      const client = bus.client();
      await client.createSender('sessions').sendMessages({ body: 'in session', sessionId: 's-expire' });
      const receiver = await client.acceptSession('sessions', 's-expire');
      await faults().set('servicebus-session-lock', { mode: 'expire' });
      const lost = await rejectionOf(receiver.renewSessionLock());
      expect(lost.code).toBe('SessionLockLost');
      await receiver.close().catch(() => undefined);
      await faults().set('servicebus-session-lock', { mode: 'none' });
      const again = await client.acceptSession('sessions', 's-expire', { receiveMode: 'receiveAndDelete' });
      expect((await receiveExactly(again, 1)).map((m) => m.body)).toEqual(['in session']);
      await again.renewSessionLock();
      await again.close();
    });
  });

  describe('servicebus-store stall', () => {
    it('acknowledges no send while commits are held, then every held send once healed', async () => {
      const client = await connectedClient();
      const sender = client.createSender('forwarded');
      await faults().set('servicebus-store', { mode: 'stall' });
      const sends = [sender.sendMessages({ body: 'held-1' }), sender.sendMessages({ body: 'held-2' })];
      // The broker has the messages (the operator sees them) but has not acknowledged them.
      await eventually(async () => ((await adminPeek(bus, 'forwarded')).length === 2 ? true : undefined), 5_000, 'the broker to take the sends');
      expect(await Promise.all(sends.map(settled))).toEqual([false, false]);
      await faults().set('servicebus-store', { mode: 'none' });
      await Promise.all(sends);
      const receiver = client.createReceiver('forwarded', { receiveMode: 'receiveAndDelete' });
      expect((await receiveExactly(receiver, 2)).map((m) => m.body).sort()).toEqual(['held-1', 'held-2']);
      await receiver.close();
    });
  });
});
