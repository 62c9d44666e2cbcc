import { ServiceBusAdministrationClient } from '@azure/service-bus';
import rhea, { type Connection } from 'rhea';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

/**
 * Probes of the Service Bus namespace with input a client may craft to hold the broker's one thread or its memory.
 * Any identity of the tenant can get a token for Service Bus, and a queue or topic's description is read before the
 * caller's right is checked (which of the two it is decides the scope), so the management API's XML parser is in reach
 * of every caller that has one; a rule's filter, of a Data Owner of one subscription and of every sender to its topic.
 */
// The time bounds leave the fixed code (well under 0.5 s each here) room for a loaded 2-core CI machine, and each is
// several times shorter than what the crafted input cost before the fix (the figures in the comments).
describe('Service Bus crafted-input probes', () => {
  let bus: TestServiceBus;
  let token: string;

  /** PUTs `body` as the description of a new queue, as the host's identity (which has no Manage right), timing the answer. */
  async function put(body: string): Promise<{ status: number; text: string; elapsedInMs: number }> {
    const started = performance.now();
    const response = await fetch(`https://${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/probe-queue?api-version=2021-05`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/atom+xml' },
      body,
    });
    const text = await response.text();
    return { status: response.status, text, elapsedInMs: performance.now() - started };
  }

  beforeAll(async () => {
    bus = await startServiceBus();
    token = (await bus.credential.getToken('https://servicebus.azure.net/.default'))!.token;
  }, 30_000);
  afterAll(() => bus.stop());

  describe('when a description declares many namespace prefixes beside many elements', () => {
    it('answers at once, without holding a copy of the prefixes per element', async () => {
      // 100 KB: 5,000 declarations on the root and 5,000 empty children. Each child copied the root's prefixes, so
      // this took some 6 s and 700 MB, and 200 KB ended the local Azure (out of memory).
      const declarations = Array.from({ length: 5_000 }, (_, i) => ` xmlns:p${i}="urn:p"`).join('');
      const answer = await put(`<QueueDescription${declarations}>${'<a/>'.repeat(5_000)}</QueueDescription>`);
      expect(answer.status).toBe(401);
      expect(answer.text).toContain('Manage,EntityWrite');
      expect(answer.elapsedInMs).toBeLessThan(4_000);
    });
  });

  describe('when an element carries many attributes', () => {
    it('answers at once, comparing each name once', async () => {
      // Just under the 1 MiB body limit: 100,000 attributes, each compared with every earlier one (some 30 s).
      const attributes = Array.from({ length: 100_000 }, (_, i) => ` a${i}=""`).join('');
      const answer = await put(`<QueueDescription${attributes}/>`);
      expect(answer.status).toBe(401);
      expect(answer.elapsedInMs).toBeLessThan(10_000);
    });

    it('still refuses an attribute named twice, saying which', async () => {
      const answer = await put(`<QueueDescription${' a=""'.repeat(2)}/>`);
      expect(answer.status).toBe(400);
      expect(answer.text).toContain('attribute a appears twice on &lt;QueueDescription&gt;');
    });
  });

  describe('when a Data Owner of one subscription gives it a LIKE filter with several %', () => {
    it('routes a message whose text almost matches at once, and the broker keeps serving', async () => {
      const namespaceId = bus.test.azure.directory.resourceId('serviceBus');
      const owner = bus.test.azure.roleAssignments.create({ principalId: bus.principalId, role: findRole('Azure Service Bus Data Owner')!, scope: namespaceId, source: 'cli' });
      try {
        const admin = new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential);
        await admin.createTopic('like-probe');
        await admin.createSubscription('like-probe', 'all');
        await admin.createSubscription('like-probe', 'almost', { defaultRuleOptions: { name: 'almost', filter: { sqlExpression: "sys.Label LIKE '%a%a%a%a%b'" } } });
        const client = bus.client();
        const sender = client.createSender('like-probe');
        // 200 a's with no b: a regular expression of the pattern backtracked for some 33 s on the broker's one thread.
        const started = performance.now();
        await sender.sendMessages({ body: 'probe', subject: 'a'.repeat(200) });
        await sender.sendMessages({ body: 'matches', subject: `${'a'.repeat(200)}b` });
        expect(performance.now() - started).toBeLessThan(10_000);
        const received = await receiveExactly(client.createReceiver('like-probe', 'almost', { receiveMode: 'receiveAndDelete' }), 1);
        expect(received.map((message) => message.body)).toEqual(['matches']);
        expect(await receiveExactly(client.createReceiver('like-probe', 'all', { receiveMode: 'receiveAndDelete' }), 2)).toHaveLength(2);
      } finally {
        bus.test.azure.roleAssignments.delete({ id: owner.id });
      }
    });
  });

  describe('when a client nobody authenticated names an address of 60,000 slashes', () => {
    /** A rhea connection (SASL ANONYMOUS, no token), open. */
    async function openAnonymous(): Promise<Connection> {
      const port = Number(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[1]);
      const container = rhea.create_container();
      const connection = container.connect({ host: 'localhost', port, transport: 'tls', servername: 'localhost', reconnect: false } as unknown as Parameters<typeof container.connect>[0]);
      await new Promise<void>((resolve, reject) => {
        connection.once('connection_open', () => resolve());
        connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
      });
      return connection;
    }
    // Each address fits in one 64 KiB frame. Every prefix of its segments was tried as an entity name and as a
    // token's path: 20,000 slashes held the broker's one thread (every listener of the local Azure) for 14 to 26 s.
    const slashes = `a${'/'.repeat(60_000)}b`;

    it('answers a put-token for it at once: 400, the name is no audience of an entity', async () => {
      const connection = await openAnonymous();
      const receiver = connection.open_receiver({ name: 'cbs-answers', source: { address: '$cbs' } });
      const answered = new Promise<Record<string, unknown>>((resolve) =>
        receiver.once('message', (context: { message?: { application_properties?: Record<string, unknown> } }) => resolve(context.message!.application_properties!)),
      );
      const sender = connection.open_sender({ target: { address: '$cbs' } });
      await new Promise((resolve) => sender.once('sendable', resolve));
      const started = performance.now();
      sender.send({ message_id: 'put', reply_to: 'cbs-answers', application_properties: { operation: 'put-token', type: 'jwt', name: `sb://localhost/${slashes}` }, body: 'not.a.token' });
      const answer = await answered;
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(answer['status-code']).toBe(400);
      expect(String(answer['status-description'])).toMatch(/^The put-token name must be the audience URI \(sb:\/\/<namespace>\/<entity>, a path of at most 352 characters\), not "sb:\/\/localhost\/a\/{84}…"\.$/);
      connection.close();
    });

    it('refuses a link to it at once, as any address without a token for it', async () => {
      const connection = await openAnonymous();
      const started = performance.now();
      const receiver = connection.open_receiver({ source: { address: slashes } });
      const refusal = await new Promise<{ condition?: string }>((resolve) =>
        receiver.once('receiver_close', (context: { receiver: { error?: { condition?: string } } }) => resolve(context.receiver.error ?? {})),
      );
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(refusal.condition).toBe('amqp:unauthorized-access');
      connection.close();
    });
  });
});
