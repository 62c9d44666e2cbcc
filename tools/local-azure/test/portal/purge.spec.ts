import type { ServiceBusClient } from '@azure/service-bus';
import { adminPeek, receiveExactly, startServiceBus, type TestServiceBus } from '../servicebus/support.js';
import { expectAuthorizationFailed, portalCaller, type PortalCaller } from './support.js';

// Purging from the portal against a real broker: the button asks first with the count as of the question, only the
// confirmation's Yes (with the session's anti-forgery token) purges, it purges the one part it names, and a user
// without the right the CLI's purge needs is refused at the first click and again at the post.
describe('The portal: purge', () => {
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
  // Each case starts empty, whatever the one before left (through the CLI's purge route, not the portal's).
  afterEach(async () => {
    for (const entity of ['plain', 'orders', 'events/Subscriptions/all']) {
      for (const dlq of ['', '?dlq=true']) await bus.test.admin().call('DELETE', `/servicebus/entities/${entity}/messages${dlq}`);
    }
  });

  let sequence = 0;
  /**
   * Sends `active` messages to a queue or topic and, before them, `deadLettered` more that a receiver (of `subscription`
   * for a topic) dead-letters; returns both sets of message ids.
   */
  const fill = async (queue: string, active: number, deadLettered = 0, subscription?: string): Promise<{ active: string[]; deadLettered: string[] }> => {
    const ids = (kind: string, n: number) => Array.from({ length: n }, () => `${kind}-${++sequence}`);
    const sent = { active: ids('active', active), deadLettered: ids('dead', deadLettered) };
    const sender = client.createSender(queue);
    if (deadLettered) {
      await sender.sendMessages(sent.deadLettered.map((messageId) => ({ messageId, body: messageId })));
      const receiver = subscription ? client.createReceiver(queue, subscription) : client.createReceiver(queue);
      for (const message of await receiveExactly(receiver, deadLettered, 10_000)) await receiver.deadLetterMessage(message, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
      await receiver.close();
    }
    if (active) await sender.sendMessages(sent.active.map((messageId) => ({ messageId, body: messageId })));
    await sender.close();
    return sent;
  };
  const ids = async (entity: string, deadLetter = false): Promise<string[]> => (await adminPeek(bus, entity, { deadLetter })).map((m) => String(m.messageId)).sort();
  /** The confirmation's Yes: the form the page holds, posted from the portal's origin; resolves with the page it leads to. */
  const confirm = async (cookie: string, csrf: string, fields: Record<string, string>): Promise<{ location: string; body: string }> => {
    const answer = await portal.post('/servicebus/purge', cookie, { ...fields, _csrf: csrf });
    expect(answer.status).toBe(303);
    const location = String(answer.headers.location);
    return { location, body: (await portal.call(location, { cookie })).body };
  };

  it("asks before purging an entity's messages: the page's button opens a confirmation with the entity, the part and the count, and only its Yes purges", async () => {
    const sent = await fill('plain', 3, 2);
    const { cookie, csrf } = await portal.signIn();
    expect((await portal.call('/servicebus', { cookie })).body).toContain(
      '<a href="/servicebus/messages?entity=plain">Peek messages<span class="visually-hidden"> of plain</span></a> · <a href="/servicebus/deadletters?entity=plain">Peek dead letters',
    );
    const page = (await portal.call('/servicebus/messages?entity=plain', { cookie })).body;
    expect(page).toContain('<caption>3 messages (peeked: nothing is locked or removed)</caption>');
    expect(page).toContain('<a href="/servicebus/messages?entity=plain" aria-current="page">Messages (3)</a>');
    expect(page).toContain('<a href="/servicebus/deadletters?entity=plain">Dead letters (2)</a>');
    // The button only asks (a GET); nothing on the page posts a purge.
    expect(page).toContain('<form method="get" action="/servicebus/purge"><input type="hidden" name="entity" value="plain"><input type="hidden" name="subqueue" value="active">');
    expect(page).not.toContain('action="/servicebus/purge"><input type="hidden" name="_csrf"');

    const confirmation = await portal.call('/servicebus/purge?entity=plain&subqueue=active', { cookie });
    expect(confirmation.status).toBe(200);
    expect(confirmation.body).toContain('<h1>Purge messages</h1>');
    expect(confirmation.body).toContain('Do you want to purge all 3 messages of <strong>plain</strong>?');
    expect(confirmation.body).toContain('<td id="purge-count">3 messages</td>');
    expect(confirmation.body).toContain('Its messages (not its dead-letter queue)');
    expect(confirmation.body).toContain(
      `<form class="confirm" method="post" action="/servicebus/purge"><input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="entity" value="plain"><input type="hidden" name="subqueue" value="active"><input type="hidden" name="expected" value="3">`,
    );
    expect(confirmation.body).toContain('<a class="button secondary" href="/servicebus/messages?entity=plain">No, go back</a>');
    expect(confirmation.body).not.toContain('<script>');
    // Asking changed nothing.
    expect(await ids('plain')).toEqual(sent.active.sort());

    const after = await confirm(cookie, csrf, { entity: 'plain', subqueue: 'active', expected: '3' });
    expect(after.location).toBe('/servicebus/messages?entity=plain');
    expect(after.body).toContain('Purged 3 messages of plain.');
    expect(after.body).toContain('plain holds no message: there is none to look at or purge.');
    expect(await ids('plain')).toEqual([]);
    // The dead-letter queue is another part: untouched.
    expect(await ids('plain', true)).toEqual(sent.deadLettered.sort());
    // The purge is in the authorization log, with what it purged.
    expect(portal.decision('portal POST /servicebus/purge (messages)')).toMatchObject({
      identity: bus.test.azure.directory.operator.userPrincipalName,
      dataAction: 'Microsoft.ServiceBus/namespaces/messages/purge/action',
      scope: `${bus.test.azure.directory.resourceId('serviceBus')}/queues/plain`,
      decision: 'allowed',
    });
  });

  it('purges only the dead-letter queue from the dead-letter page, and the active messages are still delivered', async () => {
    const sent = await fill('orders', 2, 3);
    const { cookie, csrf } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=orders', { cookie })).body;
    expect(page).toContain('<input type="hidden" name="subqueue" value="deadletter"><button class="danger" type="submit">Purge all 3 dead-lettered messages<span class="visually-hidden"> of orders</span></button>');
    const confirmation = (await portal.call('/servicebus/purge?entity=orders&subqueue=deadletter', { cookie })).body;
    expect(confirmation).toContain('<h1>Purge dead-lettered messages</h1>');
    expect(confirmation).toContain('Do you want to purge all 3 dead-lettered messages of the dead-letter queue of <strong>orders</strong>?');
    expect(confirmation).toContain('The messages of orders itself stay.');
    const after = await confirm(cookie, csrf, { entity: 'orders', subqueue: 'deadletter', expected: '3' });
    expect(after.location).toBe('/servicebus/deadletters?entity=orders');
    expect(after.body).toContain('Purged 3 messages from the dead-letter queue of orders.');
    expect(after.body).toContain('The dead-letter queue of orders is empty');
    expect(portal.decision('portal POST /servicebus/purge (dead-letter queue)')).toMatchObject({ decision: 'allowed', scope: `${bus.test.azure.directory.resourceId('serviceBus')}/queues/orders` });
    const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
    expect((await receiveExactly(receiver, 2, 10_000)).map((m) => String(m.messageId)).sort()).toEqual(sent.active.sort());
    await receiver.close();
  });

  it("purges a topic subscription's messages, not its dead letters nor another subscription's copies", async () => {
    // Plain messages match only the subscription `all` (no rule: every message); the others' rules take none of them.
    const sent = await fill('events', 2, 1, 'all');
    const { cookie, csrf } = await portal.signIn();
    const confirmation = (await portal.call('/servicebus/purge?entity=events%2FSubscriptions%2Fall&subqueue=active', { cookie })).body;
    expect(confirmation).toContain('Do you want to purge all 2 messages of <strong>events/Subscriptions/all</strong>?');
    const after = await confirm(cookie, csrf, { entity: 'events/Subscriptions/all', subqueue: 'active', expected: '2' });
    expect(after.body).toContain('Purged 2 messages of events/Subscriptions/all.');
    expect(await ids('events/Subscriptions/all')).toEqual([]);
    expect(await ids('events/Subscriptions/all', true)).toEqual(sent.deadLettered);
  });

  it('purges what is there at the Yes, and says how many more arrived after the confirmation counted', async () => {
    await fill('plain', 2);
    const { cookie, csrf } = await portal.signIn();
    expect((await portal.call('/servicebus/purge?entity=plain&subqueue=active', { cookie })).body).toContain('<td id="purge-count">2 messages</td>');
    await fill('plain', 1);
    const after = await confirm(cookie, csrf, { entity: 'plain', subqueue: 'active', expected: '2' });
    expect(after.body).toContain('Purged 3 messages of plain (1 of them arrived or was unlocked after the confirmation counted 2).');
    expect(await ids('plain')).toEqual([]);
  });

  it('keeps the messages a receiver holds locked, as Azure does, and says so: the receiver still completes one, and the rest is gone', async () => {
    const sent = await fill('plain', 3);
    const receiver = client.createReceiver('plain');
    const [locked] = await receiveExactly(receiver, 1, 10_000);
    const { cookie, csrf } = await portal.signIn();
    // The page's button does not promise "all": it names what a purge deletes.
    const page = (await portal.call('/servicebus/messages?entity=plain', { cookie })).body;
    expect(page).toContain('<button class="danger" type="submit">Purge the 2 unlocked messages<span class="visually-hidden"> of plain</span></button>');
    expect(page).not.toContain('Purge all');
    const confirmation = (await portal.call('/servicebus/purge?entity=plain&subqueue=active', { cookie })).body;
    expect(confirmation).toContain('Do you want to purge the messages of <strong>plain</strong> that no receiver holds locked (2 messages now)?');
    expect(confirmation).toContain('The 1 message locked by a receiver stays.');
    expect(confirmation).toContain('<td id="purge-count">3 messages, of which 1 locked by a receiver (kept)</td>');
    expect(confirmation).toContain("Messages a receiver holds locked stay, as with Azure's purge");
    expect(confirmation).toContain('<input type="hidden" name="expected" value="2">');
    const after = await confirm(cookie, csrf, { entity: 'plain', subqueue: 'active', expected: '2' });
    expect(after.body).toContain('Purged 2 messages of plain; kept 1 message a receiver holds locked, as Azure&#39;s purge does.');
    expect(await ids('plain')).toEqual([String(locked!.messageId)]);
    expect(sent.active).toContain(String(locked!.messageId));
    await receiver.completeMessage(locked!);
    expect(await ids('plain')).toEqual([]);
    await receiver.close();
  });

  it('offers no purge while a receiver holds every message locked, and says why; the unlocked one is offered again once abandoned', async () => {
    await fill('plain', 1, 2);
    const receiver = client.createReceiver('plain', { subQueueType: 'deadLetter' });
    const locked = await receiveExactly(receiver, 2, 10_000);
    const { cookie } = await portal.signIn();
    const page = (await portal.call('/servicebus/deadletters?entity=plain', { cookie })).body;
    expect(page).toContain('<p id="purge-all-locked">All 2 dead-lettered messages are locked by a receiver: a purge keeps locked messages');
    expect(page).not.toContain('action="/servicebus/purge"');
    // A link to the confirmation sends the operator back to the page that says why, as resubmit's does.
    const asked = await portal.call('/servicebus/purge?entity=plain&subqueue=deadletter', { cookie });
    expect([asked.status, asked.headers.location]).toEqual([303, '/servicebus/deadletters?entity=plain']);
    // The messages of the entity are another part: none of them is locked.
    expect((await portal.call('/servicebus/messages?entity=plain', { cookie })).body).toContain('>Purge the message<span class="visually-hidden"> of plain</span></button>');
    await receiver.abandonMessage(locked[0]!);
    expect((await portal.call('/servicebus/deadletters?entity=plain', { cookie })).body).toContain(
      '<button class="danger" type="submit">Purge the unlocked dead-lettered message<span class="visually-hidden"> of plain</span></button>',
    );
    // Settled, not left locked: the purge after each case keeps locked messages.
    await receiver.completeMessage(locked[1]!);
    await receiver.close();
  });

  it('sends the operator back to the page when there is nothing to purge', async () => {
    const { cookie } = await portal.signIn();
    for (const subqueue of ['active', 'deadletter']) {
      const answer = await portal.call(`/servicebus/purge?entity=plain&subqueue=${subqueue}`, { cookie });
      expect([answer.status, answer.headers.location]).toEqual([303, `/servicebus/${subqueue === 'active' ? 'messages' : 'deadletters'}?entity=plain`]);
    }
  });

  describe('refusals', () => {
    it('refuses a user without the purge right at the first click, before asking, and again at the post, changing nothing', async () => {
      const sent = await fill('plain', 1);
      const reader = await portal.signIn('reader');
      const upn = `reader@${bus.test.azure.directory.domain}`;
      const refused = await portal.call('/servicebus/purge?entity=plain&subqueue=active', { cookie: reader.cookie });
      expectAuthorizationFailed(refused, upn, 'Microsoft.ServiceBus/namespaces/messages/purge/action', 'Yes, purge');
      expect(portal.decision('portal GET /servicebus/purge (messages)')).toMatchObject({ identity: upn, decision: 'denied' });
      const posted = await portal.post('/servicebus/purge', reader.cookie, { entity: 'plain', subqueue: 'active', _csrf: reader.csrf });
      expect(posted.status).toBe(403);
      expect(posted.body).toContain('Microsoft.ServiceBus/namespaces/messages/purge/action');
      expect(portal.decision('portal POST /servicebus/purge (messages)')).toMatchObject({ identity: upn, dataAction: 'Microsoft.ServiceBus/namespaces/messages/purge/action', decision: 'denied' });
      expect(await ids('plain')).toEqual(sent.active);
    });

    it('refuses a post without the anti-forgery token, with a wrong one, or from another origin, and purges nothing', async () => {
      const sent = await fill('plain', 2);
      const { cookie, csrf } = await portal.signIn();
      const other = await portal.signIn();
      const fields = { entity: 'plain', subqueue: 'active' };
      const answers = [
        await portal.post('/servicebus/purge', cookie, fields),
        await portal.post('/servicebus/purge', cookie, { ...fields, _csrf: other.csrf }),
        await portal.call('/servicebus/purge', {
          method: 'POST',
          cookie,
          body: new URLSearchParams({ ...fields, _csrf: csrf }).toString(),
          headers: { origin: 'https://evil.example' },
        }),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(403);
        expect(answer.body).toContain('The form could not be verified');
      }
      expect(await ids('plain')).toEqual(sent.active.sort());
    });

    it('answers an unknown entity with 404 and an unknown part with 400, without repeating what a link carried, and purges nothing', async () => {
      const sent = await fill('plain', 1, 1);
      const { cookie, csrf } = await portal.signIn();
      const spoof = 'plain". Your session expired: sign in again at https://evil.example';
      const unknownEntity = await portal.call(`/servicebus/purge?entity=${encodeURIComponent(spoof)}&subqueue=active`, { cookie });
      expect(unknownEntity.status).toBe(404);
      expect((await portal.post('/servicebus/purge', cookie, { entity: spoof, subqueue: 'active', _csrf: csrf })).status).toBe(404);
      // A part that is neither: not read as "the messages" (that would purge what the link did not name).
      for (const subqueue of ['', 'deadLetter', 'all', spoof]) {
        const asked = await portal.call(`/servicebus/purge?entity=plain&subqueue=${encodeURIComponent(subqueue)}`, { cookie });
        const posted = await portal.post('/servicebus/purge', cookie, { entity: 'plain', subqueue, _csrf: csrf });
        expect([subqueue, asked.status, posted.status]).toEqual([subqueue, 400, 400]);
        expect(asked.body).not.toContain('evil.example');
      }
      expect(unknownEntity.body).not.toContain('evil.example');
      expect([await ids('plain'), await ids('plain', true)]).toEqual([sent.active, sent.deadLettered]);
    });
  });
});
