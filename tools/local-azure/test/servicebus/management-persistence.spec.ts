import { ServiceBusAdministrationClient, ServiceBusClient } from '@azure/service-bus';
import type { EntityRow } from '../../src/servicebus/admin-routes.js';
import { receiveExactly, shortRetries, startServiceBusProcess, type ServiceBusProcess } from './support.js';

// Entities created at run time are kept like those of the topology file: they come back after the local
// Azure is killed (SIGKILL) and started again on the same home and ports; the topology file is applied
// again at start. The broker runs in a child process (the CLI from source) so the test can kill it.
describe('Service Bus entities created at run time, across a restart', () => {
  let bus: ServiceBusProcess;
  let namespace: string;
  const clients: ServiceBusClient[] = [];

  function newClient(): ServiceBusClient {
    const client = new ServiceBusClient(namespace, bus.credential, shortRetries);
    clients.push(client);
    return client;
  }

  async function entityRows(): Promise<EntityRow[]> {
    const listed = await bus.child.run(['servicebus', 'entity', 'list', '--output', 'json']);
    expect(listed.code).toBe(0);
    return JSON.parse(listed.stdout) as EntityRow[];
  }

  beforeAll(async () => {
    bus = await startServiceBusProcess('management-persistence');
    namespace = bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!;
  }, 30_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await bus?.stop();
  });

  it('keeps queues, topics, subscriptions, rules and messages created at run time; applies the topology file again', async () => {
    const admin = new ServiceBusAdministrationClient(namespace, bus.credential);
    await admin.createQueue('kept', { lockDuration: 'PT45S', maxDeliveryCount: 7, userMetadata: 'made at run time' });
    const { createdAt } = await admin.getQueueRuntimeProperties('kept');
    await admin.createTopic('kept-topic');
    await admin.createSubscription('kept-topic', 'kept-sub', { defaultRuleOptions: { name: 'red', filter: { sqlExpression: "color = 'red'" } } });
    const before = newClient();
    await before.createRuleManager('kept-topic', 'kept-sub').createRule('urgent', { subject: 'urgent' }, { sqlExpression: "SET routed = 'urgent'" });
    await before.createSender('kept').sendMessages({ body: 'survives', messageId: 'kept-1' });
    await admin.createQueue('gone');
    await admin.deleteQueue('gone');
    // A change to an entity of the topology file lasts until the next start, when the file applies again.
    await admin.updateQueue({ ...(await admin.getQueue('plain')), maxDeliveryCount: 9 });
    expect((await admin.getQueue('plain')).maxDeliveryCount).toBe(9);

    await bus.child.kill('SIGKILL');
    await bus.child.start();

    const after = new ServiceBusAdministrationClient(namespace, bus.credential);
    expect(await after.getQueue('kept')).toMatchObject({ lockDuration: 'PT45S', maxDeliveryCount: 7, userMetadata: 'made at run time' });
    expect((await after.getQueueRuntimeProperties('kept')).createdAt).toEqual(createdAt);
    expect(await after.queueExists('gone')).toBe(false);
    expect((await after.getQueue('plain')).maxDeliveryCount).toBe(10);

    const client = newClient();
    const [message] = await receiveExactly(client.createReceiver('kept', { receiveMode: 'receiveAndDelete' }), 1);
    expect(message!.messageId).toBe('kept-1');
    const rules: string[] = [];
    for await (const rule of client.createRuleManager('kept-topic', 'kept-sub').listRules()) rules.push(rule.name);
    expect(rules).toEqual(['red', 'urgent']);
    await client.createSender('kept-topic').sendMessages([
      { body: 'red', applicationProperties: { color: 'red' } },
      { body: 'blue', applicationProperties: { color: 'blue' } },
      { body: 'urgent', subject: 'urgent' },
    ]);
    const routed = await receiveExactly(client.createReceiver('kept-topic', 'kept-sub', { receiveMode: 'receiveAndDelete' }), 2);
    expect(routed.map((m) => [m.body, m.applicationProperties?.routed])).toEqual([
      ['red', undefined],
      ['urgent', 'urgent'],
    ]);

    const rows = await entityRows();
    expect(rows.find((row) => row.name === 'kept')).toMatchObject({ type: 'queue', origin: 'runtime' });
    expect(rows.find((row) => row.name === 'kept-topic/Subscriptions/kept-sub')).toMatchObject({ type: 'subscription', origin: 'runtime' });
    expect(rows.find((row) => row.name === 'plain')).toMatchObject({ type: 'queue', origin: 'topology' });
  }, 60_000);
});
