import { ServiceBusAdministrationClient, type ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { randomBytes } from 'node:crypto';
import rhea from 'rhea';
import type { EntityRow } from '../../src/servicebus/admin-routes.js';
import { eventually, receiveExactly, rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

/** TimeSpan.MaxValue as Service Bus prints it ("never"). */
const never = 'P10675199DT2H48M5.4775807S';

// ServiceBusAdministrationClient against the namespace's own host and port (the ATOM management API),
// with the identity holding Azure Service Bus Data Owner. Entities here are created at run time; each
// test uses its own names.
describe('Service Bus management API', () => {
  let bus: TestServiceBus;
  let admin: ServiceBusAdministrationClient;
  let client: ServiceBusClient;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    admin = new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential);
    client = bus.client();
  }, 30_000);
  afterAll(() => bus.stop());

  describe('when managing queues', () => {
    it('creates a queue with the given properties and Azure’s defaults for the rest', async () => {
      const created = await admin.createQueue('mgmt-defaults', { lockDuration: 'PT30S', maxDeliveryCount: 4, defaultMessageTimeToLive: 'PT1H', userMetadata: 'owner: tests' });
      expect(created).toMatchObject({
        name: 'mgmt-defaults',
        lockDuration: 'PT30S',
        maxDeliveryCount: 4,
        defaultMessageTimeToLive: 'PT1H',
        userMetadata: 'owner: tests',
        maxSizeInMegabytes: 1024,
        requiresSession: false,
        requiresDuplicateDetection: false,
        duplicateDetectionHistoryTimeWindow: 'PT10M',
        deadLetteringOnMessageExpiration: false,
        enableBatchedOperations: true,
        enablePartitioning: false,
        autoDeleteOnIdle: never,
        status: 'Active',
        availabilityStatus: 'Available',
      });
      expect(await admin.getQueue('mgmt-defaults')).toMatchObject({ name: 'mgmt-defaults', lockDuration: 'PT30S', maxDeliveryCount: 4 });
      expect(await admin.queueExists('mgmt-defaults')).toBe(true);
    });

    it('serves a queue to senders and receivers as soon as it is created', async () => {
      await admin.createQueue('mgmt-live');
      await client.createSender('mgmt-live').sendMessages({ body: 'hello', messageId: 'live-1' });
      const [message] = await receiveExactly(client.createReceiver('mgmt-live', { receiveMode: 'receiveAndDelete' }), 1);
      expect(message!.messageId).toBe('live-1');
    });

    it('updates a queue, and the broker applies the new properties to the next delivery', async () => {
      await admin.createQueue('mgmt-update', { maxDeliveryCount: 5 });
      const queue = await admin.getQueue('mgmt-update');
      queue.maxDeliveryCount = 1;
      queue.userMetadata = 'changed';
      const updated = await admin.updateQueue(queue);
      expect(updated).toMatchObject({ maxDeliveryCount: 1, userMetadata: 'changed' });
      await client.createSender('mgmt-update').sendMessages({ body: 'one try' });
      const receiver = client.createReceiver('mgmt-update');
      const [message] = await receiveExactly(receiver, 1);
      await receiver.abandonMessage(message!);
      const [dead] = await receiveExactly(client.createReceiver('mgmt-update', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' }), 1);
      expect(dead!.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    });

    it('reports runtime properties: active (deferred included), dead-letter and scheduled counts, size and times', async () => {
      const created = await admin.createQueue('mgmt-counts');
      const sender = client.createSender('mgmt-counts');
      await sender.sendMessages([{ body: 'stays' }, { body: 'deferred' }, { body: 'dead' }]);
      await sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 3_600_000));
      const receiver = client.createReceiver('mgmt-counts');
      const received = await receiveExactly(receiver, 3);
      const byBody = (body: string): ServiceBusReceivedMessage => received.find((m) => m.body === body)!;
      await receiver.deferMessage(byBody('deferred'));
      await receiver.deadLetterMessage(byBody('dead'));
      await receiver.abandonMessage(byBody('stays'));
      const runtime = await admin.getQueueRuntimeProperties('mgmt-counts');
      expect(runtime).toMatchObject({
        name: 'mgmt-counts',
        activeMessageCount: 2,
        deadLetterMessageCount: 1,
        scheduledMessageCount: 1,
        transferMessageCount: 0,
        transferDeadLetterMessageCount: 0,
        totalMessageCount: 4,
      });
      expect(runtime.sizeInBytes).toBeGreaterThan(0);
      expect(runtime.createdAt.getTime()).toBeLessThanOrEqual(runtime.accessedAt.getTime());
      expect(Math.abs(runtime.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
      expect(created.name).toBe(runtime.name);
    });

    it('deletes a queue with its messages and detaches its receivers with MessagingEntityNotFound', async () => {
      await admin.createQueue('mgmt-delete');
      await client.createSender('mgmt-delete').sendMessages({ body: 'goes with the queue' });
      const errors: (Error & { code?: string })[] = [];
      const receiver = client.createReceiver('mgmt-delete');
      // Holds the message's lock while the queue goes.
      const delivered = new Promise<void>((resolve) =>
        receiver.subscribe(
          { processMessage: async () => resolve(), processError: async ({ error }) => void errors.push(error as Error & { code?: string }) },
          { autoCompleteMessages: false },
        ),
      );
      await delivered;
      await admin.deleteQueue('mgmt-delete');
      await eventually(() => (errors.some((error) => error.code === 'MessagingEntityNotFound') ? true : undefined), 5000, 'MessagingEntityNotFound on the receiver');
      await receiver.close();
      expect(await admin.queueExists('mgmt-delete')).toBe(false);
      const sendError = await rejectionOf(client.createSender('mgmt-delete').sendMessages({ body: 'nowhere' }));
      expect(sendError.code).toBe('MessagingEntityNotFound');
      await admin.createQueue('mgmt-delete');
      expect(await admin.getQueueRuntimeProperties('mgmt-delete')).toMatchObject({ totalMessageCount: 0 });
    });

    it('answers a queue that exists with 409 and one that does not with Azure’s not-found answers', async () => {
      await admin.createQueue('mgmt-twice');
      expect(await rejectionOf(admin.createQueue('mgmt-twice'))).toMatchObject({ statusCode: 409, code: 'MessageEntityAlreadyExistsError' });
      expect(await rejectionOf(admin.createTopic('MGMT-TWICE'))).toMatchObject({ statusCode: 409, code: 'MessageEntityAlreadyExistsError' });
      // A missing queue or topic reads as an empty feed (200), as in Azure; the SDK reports it as not found.
      expect(await rejectionOf(admin.getQueue('mgmt-missing'))).toMatchObject({ statusCode: 200, code: 'MessageEntityNotFoundError' });
      expect(await admin.queueExists('mgmt-missing')).toBe(false);
      expect(await rejectionOf(admin.deleteQueue('mgmt-missing'))).toMatchObject({ statusCode: 404, code: 'MessageEntityNotFoundError' });
      const missing = await rejectionOf(admin.updateQueue({ ...(await admin.getQueue('mgmt-twice')), name: 'mgmt-missing' }));
      expect(missing).toMatchObject({ statusCode: 404, code: 'MessageEntityNotFoundError' });
      expect(missing.message).toMatch(/The messaging entity 'mgmt-missing' could not be found/);
    });

    it('refuses property values Azure refuses, and changing RequiresSession of an existing queue (400)', async () => {
      const tooShort = await rejectionOf(admin.createQueue('mgmt-invalid', { lockDuration: 'PT1S' }));
      expect(tooShort).toMatchObject({ statusCode: 400, code: 'ServiceError' });
      expect(tooShort.message).toMatch(/The value 'PT1S' of the Queue property LockDuration is invalid: expected from PT5S to PT5M/);
      expect(await admin.queueExists('mgmt-invalid')).toBe(false);
      expect((await rejectionOf(admin.createQueue('ends-with-'))).message).toMatch(/The entity name 'ends-with-' may contain letters, digits/);
      expect(await rejectionOf(admin.createQueue('a/Subscriptions/b/c'))).toMatchObject({ statusCode: 400 });
      const sas = await rejectionOf(
        admin.createQueue('mgmt-sas', {
          authorizationRules: [{ claimType: 'SharedAccessKey', accessRights: ['Listen'], keyName: 'listen', primaryKey: randomBytes(32).toString('base64'), secondaryKey: randomBytes(32).toString('base64') }],
        }),
      );
      expect(sas).toMatchObject({ statusCode: 400 });
      expect(sas.message).toMatch(/Shared access authorization rules are not accepted: this namespace has local \(SAS key\) authentication disabled/);
      await admin.createQueue('mgmt-fixed');
      const queue = await admin.getQueue('mgmt-fixed');
      const changed = await rejectionOf(admin.updateQueue({ ...queue, requiresSession: true }));
      expect(changed).toMatchObject({ statusCode: 400 });
      expect(changed.message).toMatch(/The value for the RequiresSession property of an existing Queue cannot be changed/);
    });

    it('refuses sends to a disabled queue with MessagingEntityDisabled', async () => {
      await admin.createQueue('mgmt-disabled');
      const queue = await admin.getQueue('mgmt-disabled');
      await admin.updateQueue({ ...queue, status: 'SendDisabled' });
      expect(await rejectionOf(client.createSender('mgmt-disabled').sendMessages({ body: 'refused' }))).toMatchObject({ code: 'MessagingEntityDisabled' });
      await admin.updateQueue({ ...queue, status: 'Active' });
      await client.createSender('mgmt-disabled').sendMessages({ body: 'accepted again' });
    });

    it('forwards with ForwardTo set through the management API (the SDK sends the supplementary authorization)', async () => {
      await admin.createQueue('mgmt-destination');
      const source = await admin.createQueue('mgmt-source', { forwardTo: 'mgmt-destination' });
      expect(source.forwardTo).toBe(`sb://${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/mgmt-destination`);
      // The update sends the absolute address back, as the SDK read it.
      await admin.updateQueue({ ...(await admin.getQueue('mgmt-source')), maxDeliveryCount: 3 });
      await client.createSender('mgmt-source').sendMessages({ body: 'forwarded', messageId: 'fwd-1' });
      const [message] = await receiveExactly(client.createReceiver('mgmt-destination', { receiveMode: 'receiveAndDelete' }), 1);
      expect(message!.messageId).toBe('fwd-1');
      const loop = await rejectionOf(admin.updateQueue({ ...(await admin.getQueue('mgmt-destination')), forwardTo: 'mgmt-source' }));
      expect(loop).toMatchObject({ statusCode: 400 });
      expect(loop.message).toMatch(/Setting ForwardTo to 'mgmt-source' would make messages loop back to 'mgmt-destination'/);
      expect((await rejectionOf(admin.createQueue('mgmt-nowhere', { forwardTo: 'no-such-queue' }))).message).toMatch(/The ForwardTo destination 'no-such-queue' does not exist/);
    });
  });

  describe('when listing', () => {
    const names = ['mgmt-list-a', 'mgmt-list-b', 'mgmt-list-c', 'mgmt-list-d', 'mgmt-list-e'];

    beforeAll(async () => {
      for (const name of names) await admin.createQueue(name);
    });

    it('lists every queue, those of the topology file and those created at run time, in name order', async () => {
      const listed: string[] = [];
      for await (const queue of admin.listQueues()) listed.push(queue.name);
      expect(listed).toEqual(expect.arrayContaining([...names, 'orders', 'plain']));
      expect(listed).toEqual([...listed].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' })));
    });

    it('pages with $skip and $top as the SDK asks, following next links and continuation tokens', async () => {
      const all: string[] = [];
      for await (const queue of admin.listQueues()) all.push(queue.name);
      const pages: string[][] = [];
      for await (const page of admin.listQueues().byPage({ maxPageSize: 2 })) pages.push(page.map((queue) => queue.name));
      expect(pages.every((page) => page.length <= 2)).toBe(true);
      expect(pages.flat()).toEqual(all);
      const first = await admin.listQueues().byPage({ maxPageSize: 3 }).next();
      const rest = await admin.listQueues().byPage({ maxPageSize: 100, continuationToken: first.value.continuationToken }).next();
      expect([...first.value.map((q: { name: string }) => q.name), ...rest.value.map((q: { name: string }) => q.name)]).toEqual(all);
    });

    it('lists queues with their runtime properties', async () => {
      const runtime: { name: string; totalMessageCount?: number }[] = [];
      for await (const queue of admin.listQueuesRuntimeProperties()) runtime.push(queue);
      expect(runtime.find((queue) => queue.name === 'mgmt-list-a')).toMatchObject({ totalMessageCount: 0, activeMessageCount: 0 });
    });
  });

  describe('when managing topics, subscriptions and rules', () => {
    it('creates a topic and subscriptions: without rules they get $Default, with a default rule they route by it', async () => {
      const topic = await admin.createTopic('mgmt-topic', { defaultMessageTimeToLive: 'PT1H' });
      expect(topic).toMatchObject({ name: 'mgmt-topic', supportOrdering: true, maxSizeInMegabytes: 1024, defaultMessageTimeToLive: 'PT1H' });
      await admin.createSubscription('mgmt-topic', 'everything');
      expect(await admin.getRule('mgmt-topic', 'everything', '$Default')).toMatchObject({ name: '$Default', filter: { sqlExpression: '1=1' } });
      const blue = await admin.createSubscription('mgmt-topic', 'blue', {
        maxDeliveryCount: 2,
        defaultRuleOptions: { name: 'BlueRule', filter: { sqlExpression: "color = 'blue'" }, action: { sqlExpression: "SET color = 'processed'; SET sys.To = 'desk'" } },
      });
      expect(blue).toMatchObject({ subscriptionName: 'blue', topicName: 'mgmt-topic', maxDeliveryCount: 2, deadLetteringOnFilterEvaluationExceptions: true });
      const rules: string[] = [];
      for await (const rule of admin.listRules('mgmt-topic', 'blue')) rules.push(rule.name);
      expect(rules).toEqual(['BlueRule']);
      await client.createSender('mgmt-topic').sendMessages([
        { body: 'b', applicationProperties: { color: 'blue' } },
        { body: 'r', applicationProperties: { color: 'red' } },
      ]);
      const [routed] = await receiveExactly(client.createReceiver('mgmt-topic', 'blue', { receiveMode: 'receiveAndDelete' }), 1);
      expect([routed!.body, routed!.applicationProperties?.color, routed!.to]).toEqual(['b', 'processed', 'desk']);
      expect(await receiveExactly(client.createReceiver('mgmt-topic', 'everything', { receiveMode: 'receiveAndDelete' }), 2)).toHaveLength(2);
    });

    it('creates, reads, updates, lists and deletes rules; a change routes the next message', async () => {
      await admin.createTopic('mgmt-rules');
      await admin.createSubscription('mgmt-rules', 'sub');
      await admin.deleteRule('mgmt-rules', 'sub', '$Default');
      const created = await admin.createRule('mgmt-rules', 'sub', 'eu', { subject: 'order', applicationProperties: { region: 'eu', priority: 2, urgent: true } });
      expect(created).toMatchObject({ name: 'eu', filter: { subject: 'order', applicationProperties: { region: 'eu', priority: 2, urgent: true } } });
      const sender = client.createSender('mgmt-rules');
      const receiver = client.createReceiver('mgmt-rules', 'sub', { receiveMode: 'receiveAndDelete' });
      await sender.sendMessages([
        { body: 'eu', subject: 'order', applicationProperties: { region: 'eu', priority: 2, urgent: true } },
        { body: 'us', subject: 'order', applicationProperties: { region: 'us', priority: 2, urgent: true } },
      ]);
      expect((await receiveExactly(receiver, 1)).map((m) => m.body)).toEqual(['eu']);
      const rule = await admin.getRule('mgmt-rules', 'sub', 'eu');
      await admin.updateRule('mgmt-rules', 'sub', { ...rule, filter: { sqlExpression: "region = 'us'" }, action: { sqlExpression: 'SET seen = 1' } });
      await sender.sendMessages([{ body: 'eu-2', applicationProperties: { region: 'eu' } }, { body: 'us-2', applicationProperties: { region: 'us' } }]);
      expect((await receiveExactly(receiver, 1)).map((m) => [m.body, m.applicationProperties?.seen])).toEqual([['us-2', 1]]);
      expect(await rejectionOf(admin.createRule('mgmt-rules', 'sub', 'eu', { sqlExpression: '1=1' }))).toMatchObject({ statusCode: 409, code: 'MessageEntityAlreadyExistsError' });
      const invalid = await rejectionOf(admin.createRule('mgmt-rules', 'sub', 'broken', { sqlExpression: "color = 'red" }));
      expect(invalid).toMatchObject({ statusCode: 400 });
      expect(invalid.message).toMatch(/string literal is not closed/);
      await admin.deleteRule('mgmt-rules', 'sub', 'eu');
      expect(await rejectionOf(admin.getRule('mgmt-rules', 'sub', 'eu'))).toMatchObject({ statusCode: 404, code: 'MessageEntityNotFoundError' });
      expect(await admin.ruleExists('mgmt-rules', 'sub', 'eu')).toBe(false);
    });

    it('reports topic and subscription runtime properties', async () => {
      await admin.createTopic('mgmt-topic-counts');
      await admin.createSubscription('mgmt-topic-counts', 'a');
      await admin.createSubscription('mgmt-topic-counts', 'b');
      const sender = client.createSender('mgmt-topic-counts');
      await sender.sendMessages({ body: 'now' });
      await sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 3_600_000));
      expect(await admin.getTopicRuntimeProperties('mgmt-topic-counts')).toMatchObject({ name: 'mgmt-topic-counts', subscriptionCount: 2, scheduledMessageCount: 1 });
      expect(await admin.getSubscriptionRuntimeProperties('mgmt-topic-counts', 'a')).toMatchObject({
        subscriptionName: 'a',
        topicName: 'mgmt-topic-counts',
        activeMessageCount: 1,
        totalMessageCount: 2,
      });
      const subscriptions: string[] = [];
      for await (const subscription of admin.listSubscriptions('mgmt-topic-counts')) subscriptions.push(subscription.subscriptionName);
      expect(subscriptions).toEqual(['a', 'b']);
    });

    it('answers a missing subscription or rule with 404 and deletes a topic with its subscriptions', async () => {
      await admin.createTopic('mgmt-topic-delete');
      await admin.createSubscription('mgmt-topic-delete', 's');
      expect(await rejectionOf(admin.getSubscription('mgmt-topic-delete', 'missing'))).toMatchObject({ statusCode: 404, code: 'MessageEntityNotFoundError' });
      expect(await rejectionOf(admin.getRule('mgmt-topic-delete', 's', 'missing'))).toMatchObject({ statusCode: 404 });
      expect(await rejectionOf(admin.createSubscription('mgmt-topic-delete', 's'))).toMatchObject({ statusCode: 409 });
      await admin.deleteTopic('mgmt-topic-delete');
      expect(await admin.topicExists('mgmt-topic-delete')).toBe(false);
      expect(await rejectionOf(admin.getSubscription('mgmt-topic-delete', 's'))).toMatchObject({ statusCode: 404 });
    });
  });

  it('deletes messages in batches over $management (batch-delete-messages, which SDKs newer than 7.9.5 send)', async () => {
    await admin.createQueue('mgmt-batch-delete');
    const sender = client.createSender('mgmt-batch-delete');
    await sender.sendMessages([1, 2, 3, 4, 5].map((n) => ({ body: n })));
    // 7.9.5 has no deleteMessages(): the request is sent through the SDK's own management link.
    interface ManagementLink {
      initWithUniqueReplyTo(options: object): Promise<object>;
      replyTo: string;
      _makeManagementRequest(request: object, logger: object, options: object): Promise<{ application_properties: Record<string, unknown>; body: Record<string, unknown> }>;
    }
    const management = (client as unknown as { _connectionContext: { getManagementClient(path: string): ManagementLink } })._connectionContext.getManagementClient('mgmt-batch-delete');
    const batchDelete = async (count: number, before: Date): Promise<unknown> => {
      await management.initWithUniqueReplyTo({});
      const response = await management._makeManagementRequest(
        {
          body: { 'message-count': rhea.types.wrap_int(count), 'enqueued-time-utc': before },
          reply_to: management.replyTo,
          application_properties: { operation: 'com.microsoft:batch-delete-messages' },
        },
        { verbose: () => undefined, logError: () => undefined },
        {},
      );
      return response.body['message-count'];
    };
    expect(await batchDelete(10, new Date(0))).toBe(0);
    expect(await batchDelete(3, new Date(Date.now() + 60_000))).toBe(3);
    const left = await receiveExactly(client.createReceiver('mgmt-batch-delete', { receiveMode: 'receiveAndDelete' }), 2);
    expect(left.map((m) => m.body)).toEqual([4, 5]);
  });

  it('reports the namespace’s properties', async () => {
    expect(await admin.getNamespaceProperties()).toMatchObject({ name: 'sb-keyless-local', messagingSku: 'Standard' });
  });

  it('shows entities created at run time in the operator view, apart from the topology file’s', async () => {
    await admin.createQueue('mgmt-operator-view');
    const rows = await bus.test.admin().call<EntityRow[]>('GET', '/servicebus/entities');
    expect(rows.find((row) => row.name === 'mgmt-operator-view')).toMatchObject({ type: 'queue', origin: 'runtime' });
    expect(rows.find((row) => row.name === 'orders')).toMatchObject({ type: 'queue', origin: 'topology' });
  });
});
