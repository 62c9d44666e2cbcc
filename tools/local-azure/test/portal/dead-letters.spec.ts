import type { ServiceBusClient } from '@azure/service-bus';
import { adminPeek, receiveExactly, startServiceBus, type TestServiceBus } from '../servicebus/support.js';
import { expectAuthorizationFailed, portalCaller, type PortalCaller } from './support.js';

// The portal's dead-letter page against a real broker: the counts it shows are the queue's, the resubmit button says
// what it moves (not the messages a receiver holds locked, which stay), a resubmitted message is delivered again
// exactly once, and a user without the right is refused at the first click and again at the post.
describe('The portal: dead letters', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  let portal: PortalCaller;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    portal = portalCaller(bus.test);
  });
  afterAll(() => bus.stop());

  const deadLetter = async (count: number): Promise<string[]> => {
    const ids = Array.from({ length: count }, (_, i) => `dl-${count}-${i}`);
    await client.createSender('orders').sendMessages(ids.map((messageId) => ({ messageId, body: { messageId } })));
    const receiver = client.createReceiver('orders');
    for (const message of await receiveExactly(receiver, count, 10_000)) await receiver.deadLetterMessage(message, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
    await receiver.close();
    return ids;
  };
  const resubmit = async (cookie: string, csrf: string): Promise<string> => {
    const answer = await portal.post('/servicebus/resubmit', cookie, { entity: 'orders', _csrf: csrf });
    expect(answer.status).toBe(303);
    return (await portal.call(String(answer.headers.location), { cookie })).body;
  };
  const receiveAll = async (count: number): Promise<string[]> => {
    const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
    const received = await receiveExactly(receiver, count, 10_000);
    // Nothing more: a resubmit that duplicated a message would leave one behind.
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 })).toEqual([]);
    await receiver.close();
    return received.map((m) => String(m.messageId)).sort();
  };

  it('counts every dead-lettered message, pages through them 100 at a time, and resubmits them all once each', async () => {
    const ids = await deadLetter(102);
    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain('<caption>The first 100 of 102 dead-lettered messages');
    expect(page).toContain('Resubmit all 102 messages to orders');
    const next = /<a href="(\/servicebus\/deadletters\?entity=orders&amp;from=\d+)">Next 100<\/a>/.exec(page);
    expect(next).not.toBeNull();
    const second = (await portal.call(next![1]!.replace('&amp;', '&'), { cookie })).body;
    expect(second).toMatch(/<caption>2 dead-lettered messages from sequence number \d+, of 102 \(peeked/);
    expect([...second.matchAll(/<td class="mono">(dl-102-\d+)<\/td>/g)].map((m) => m[1])).toEqual(['dl-102-100', 'dl-102-101']);
    expect(second).not.toContain('>Next 100<');
    expect(second).toContain('<a href="/servicebus/deadletters?entity=orders">First page</a>');
    const after = await resubmit(cookie, csrf);
    expect(after).toContain('Resubmitted 102 messages to orders.');
    expect(after).toContain('The dead-letter queue of orders is empty');
    expect(await receiveAll(102)).toEqual([...ids].sort());
  });

  it("shows each message's delivery count as Service Bus reports it: failed deliveries, not receives", async () => {
    const sender = client.createSender('orders');
    await sender.sendMessages([{ messageId: 'once', body: 'once' }, { messageId: 'abandoned', body: 'abandoned' }]);
    const receiver = client.createReceiver('orders');
    for (const message of await receiveExactly(receiver, 2, 10_000)) {
      if (message.messageId === 'once') await receiver.deadLetterMessage(message, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
      else await receiver.abandonMessage(message);
    }
    // orders has MaxDeliveryCount 3: the third abandon moves the message to the dead-letter queue.
    for (let abandons = 1; abandons < 3; abandons++) for (const message of await receiveExactly(receiver, 1, 10_000)) await receiver.abandonMessage(message);
    await receiver.close();
    const peeked = await client.createReceiver('orders', { subQueueType: 'deadLetter' }).peekMessages(10);
    const sdk = Object.fromEntries(peeked.map((m) => [String(m.messageId), m.deliveryCount]));
    expect(sdk).toEqual({ once: 0, abandoned: 3 });

    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain('<th scope="col">Delivery count</th>');
    expect(page).toContain('The delivery count is the one Service Bus reports: the deliveries that failed');
    const cells = (id: string): string[] => [...new RegExp(`<tr>((?:(?!<tr>).)*?${id}.*?)</tr>`, 's').exec(page)![1]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) => m[1]!);
    expect([cells('>once<')[6], cells('>abandoned<')[6]]).toEqual([String(sdk.once), String(sdk.abandoned)]);
    await resubmit(cookie, csrf);
    await receiveAll(2);
  });

  it('asks before resubmitting: the button opens a confirmation that says how many go where, and only its Yes moves them', async () => {
    const ids = await deadLetter(2);
    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).not.toContain('method="post" action="/servicebus/resubmit"');
    expect(page).toContain('<form method="get" action="/servicebus/resubmit"><input type="hidden" name="entity" value="orders">');
    const confirmation = await portal.call('/servicebus/resubmit?entity=orders', { cookie });
    expect(confirmation.status).toBe(200);
    expect(confirmation.body).toContain('<h1>Resubmit dead-lettered messages</h1>');
    expect(confirmation.body).toContain('Do you want to resubmit all 2 dead-lettered messages to <strong>orders</strong>?');
    expect(confirmation.body).toContain(`<form class="confirm" method="post" action="/servicebus/resubmit"><input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="entity" value="orders">`);
    expect(confirmation.body).toContain('<a class="button secondary" href="/servicebus/deadletters?entity=orders">No, go back</a>');
    // Asking changed nothing.
    expect((await adminPeek(bus, 'orders', { deadLetter: true })).map((m) => m.messageId).sort()).toEqual([...ids].sort());
    expect(await resubmit(cookie, csrf)).toContain('Resubmitted 2 messages to orders.');
    expect(await receiveAll(2)).toEqual([...ids].sort());
    // With nothing left to resubmit, the confirmation sends the operator back to the (empty) dead-letter page.
    const empty = await portal.call('/servicebus/resubmit?entity=orders', { cookie });
    expect([empty.status, empty.headers.location]).toEqual([303, '/servicebus/deadletters?entity=orders']);
    expect((await portal.call('/servicebus/resubmit?entity=nothing', { cookie })).status).toBe(404);
  });

  it('names what a resubmit moves while a receiver holds a dead letter locked, asks about those, and moves only them', async () => {
    const ids = await deadLetter(3);
    const dlq = client.createReceiver('orders', { subQueueType: 'deadLetter' });
    const [locked] = await receiveExactly(dlq, 1, 10_000);
    const { cookie, csrf } = await portal.signIn();
    // The button does not promise "all": the locked one stays.
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain('<button type="submit">Resubmit the 2 messages that can go back to orders</button>');
    expect(page).not.toContain('Resubmit all');
    const confirmation = (await portal.call('/servicebus/resubmit?entity=orders', { cookie })).body;
    expect(confirmation).toContain('Do you want to resubmit the dead-lettered messages that can go back to <strong>orders</strong> (2 messages now)?');
    expect(confirmation).toContain('The 1 message locked by a receiver stays.');
    // The notice names why the one stayed, and only that reason (orders does not require sessions).
    const after = await resubmit(cookie, csrf);
    expect(after).toContain('Resubmitted 2 messages to orders; 1 message kept in the dead-letter queue (locked by a receiver).');
    expect(after).not.toContain('session id');
    expect(await receiveAll(2)).toEqual(ids.filter((id) => id !== locked!.messageId).sort());
    // Settled, not left locked: a later case would find it.
    await dlq.completeMessage(locked!);
    await dlq.close();
  });

  it('offers no resubmit while a receiver holds every dead letter locked, and says why; the unlocked one is offered again once abandoned', async () => {
    const ids = await deadLetter(2);
    const dlq = client.createReceiver('orders', { subQueueType: 'deadLetter' });
    const locked = await receiveExactly(dlq, 2, 10_000);
    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain(
      '<p id="resubmit-none">All 2 dead-lettered messages are locked by a receiver: a resubmit leaves locked messages in the dead-letter queue, so there is nothing to resubmit until the receiver settles or abandons them, or their locks expire.</p>',
    );
    expect(page).not.toContain('action="/servicebus/resubmit"');
    // A link to the confirmation sends the operator back to the page that says why.
    const asked = await portal.call('/servicebus/resubmit?entity=orders', { cookie });
    expect([asked.status, asked.headers.location]).toEqual([303, '/servicebus/deadletters?entity=orders']);
    const abandoned = locked.find((m) => m.messageId === ids[0])!;
    await dlq.abandonMessage(abandoned);
    expect((await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body).toContain(
      '<button type="submit">Resubmit the message that can go back to orders</button>',
    );
    expect(await resubmit(cookie, csrf)).toContain('Resubmitted 1 message to orders; 1 message kept in the dead-letter queue (locked by a receiver).');
    expect(await receiveAll(1)).toEqual([ids[0]]);
    await dlq.completeMessage(locked.find((m) => m.messageId === ids[1])!);
    await dlq.close();
  });

  it('answers an unknown entity with 404 without repeating the name a link carried', async () => {
    const { cookie } = await portal.signIn();
    const spoof = 'orders". Your session expired: sign in again at https://evil.example';
    for (const path of [`/servicebus/deadletters?entity=${encodeURIComponent(spoof)}`, `/servicebus/resubmit?entity=${encodeURIComponent(spoof)}`]) {
      const answer = await portal.call(path, { cookie });
      expect([path, answer.status]).toEqual([path, 404]);
      expect(answer.body).toContain('There is no such queue or subscription in the namespace');
      expect(answer.body).not.toContain('evil.example');
    }
  });

  it('refuses a user without the resubmit right at the first click, before asking, and again at the post, moving nothing', async () => {
    const ids = await deadLetter(1);
    try {
      const reader = await portal.signIn('reader');
      const upn = `reader@${bus.test.azure.directory.domain}`;
      const refused = await portal.call('/servicebus/resubmit?entity=orders', { cookie: reader.cookie });
      expectAuthorizationFailed(refused, upn, 'Microsoft.ServiceBus/namespaces/messages/resubmit/action', 'Yes, resubmit');
      expect(portal.decision('portal GET /servicebus/resubmit')).toMatchObject({
        identity: upn,
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/resubmit/action',
        scope: `${bus.test.azure.directory.resourceId('serviceBus')}/queues/orders`,
        decision: 'denied',
      });
      const posted = await portal.post('/servicebus/resubmit', reader.cookie, { entity: 'orders', _csrf: reader.csrf });
      expect(posted.status).toBe(403);
      expect(posted.body).toContain('Microsoft.ServiceBus/namespaces/messages/resubmit/action');
      expect(portal.decision('portal POST /servicebus/resubmit')).toMatchObject({ identity: upn, dataAction: 'Microsoft.ServiceBus/namespaces/messages/resubmit/action', decision: 'denied' });
      expect((await adminPeek(bus, 'orders', { deadLetter: true })).map((m) => String(m.messageId))).toEqual(ids);
    } finally {
      // Nothing left for the next case, pass or fail (through the CLI's purge route, not the portal).
      await bus.test.admin().call('DELETE', '/servicebus/entities/orders/messages?dlq=true');
    }
  });

  it('speaks of one message in the singular', async () => {
    const ids = await deadLetter(1);
    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain('<caption>1 dead-lettered message (');
    expect(page).toContain('Resubmit the message to orders');
    expect(await resubmit(cookie, csrf)).toContain('Resubmitted 1 message to orders.');
    expect(await receiveAll(1)).toEqual(ids);
  });
});
