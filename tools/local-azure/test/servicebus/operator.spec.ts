import type { ServiceBusClient } from '@azure/service-bus';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClientError, type AdminClient } from '../../src/cli/admin-client.js';
import type { EntityRow, MessageRow } from '../../src/servicebus/admin-routes.js';
import { LocalAzureProcess } from '../../src/testing/index.js';
import { adminPeek, receiveExactly, startServiceBus, type TestServiceBus } from './support.js';

// The operator view: the admin API routes and the `servicebus …` CLI commands (run from source).
describe('Service Bus operator view', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  let admin: AdminClient;
  let cli: LocalAzureProcess;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    admin = bus.test.admin();
    cli = new LocalAzureProcess({ home: bus.test.home });
    const sender = client.createSender('orders');
    await sender.sendMessages([
      { body: 'active one', messageId: 'a-1', subject: 'order.created' },
      { body: 'to dead-letter', messageId: 'd-1' },
      { body: 'to dead-letter too', messageId: 'd-2' },
    ]);
    await sender.scheduleMessages({ body: 'later', messageId: 's-1' }, new Date(Date.now() + 3_600_000));
    const receiver = client.createReceiver('orders');
    const received = await receiveExactly(receiver, 3);
    await receiver.abandonMessage(received[0]!);
    await receiver.deadLetterMessage(received[1]!, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
    await receiver.deadLetterMessage(received[2]!, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
  });
  afterAll(() => bus.stop());

  it('lists entities with active, scheduled and dead-letter counts', async () => {
    const rows = await admin.call<EntityRow[]>('GET', '/servicebus/entities');
    expect(rows.find((row) => row.name === 'orders')).toMatchObject({
      type: 'queue',
      origin: 'topology',
      active: 1,
      scheduled: 1,
      deadLetter: 2,
      properties: { lockDuration: 'PT5S', maxDeliveryCount: 3, deadLetteringOnMessageExpiration: true },
    });
    expect(rows.find((row) => row.name === 'events')).toMatchObject({ type: 'topic', properties: { subscriptions: 6 } });
    expect(rows.find((row) => row.name === 'events/Subscriptions/red-bulk')).toMatchObject({
      type: 'subscription',
      properties: { rules: ["red-and-many: Sql color = 'red' AND quantity > 5"] },
    });
  });

  it('prints the entity list as a table and the namespace as JSON from the CLI', async () => {
    const table = await cli.run(['servicebus', 'entity', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^Name\s+Type\s+Origin\s+Active\s+Scheduled\s+Deferred\s+Locked\s+Dead Letter/m);
    expect(table.stdout).toMatch(/^orders\s+queue\s+topology\s+1\s+1\s+0\s+0\s+2\s*$/m);
    const show = await cli.run(['servicebus', 'show', '--output', 'json']);
    expect(JSON.parse(show.stdout)).toMatchObject({
      fullyQualifiedNamespace: bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
      resourceId: bus.env.SERVICEBUS_NAMESPACE_RESOURCE_ID,
      maxMessageSizeInBytes: 262_144,
      queues: 11,
    });
  });

  it('peeks active and dead-lettered messages without locking them', async () => {
    const peeked = await cli.run(['servicebus', 'peek', 'orders', '--dlq', '--output', 'json']);
    expect(peeked.code).toBe(0);
    expect(JSON.parse(peeked.stdout)).toEqual([
      expect.objectContaining({ messageId: 'd-1', body: '"to dead-letter"', deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' }),
      expect.objectContaining({ messageId: 'd-2', deadLetterReason: 'Broken' }),
    ]);
    const active = await adminPeek(bus, 'orders');
    expect(active.map((m: MessageRow) => [m.messageId, m.state, m.deliveryCount])).toEqual([
      ['a-1', 'active', 1],
      ['s-1', 'scheduled', 0],
    ]);
  });

  it('resubmits dead-lettered messages to their entity without their dead-letter reason', async () => {
    const result = await cli.run(['servicebus', 'resubmit', 'orders', '--output', 'json']);
    expect(JSON.parse(result.stdout)).toEqual({ entity: 'orders', resubmitted: 2, kept: 0, lockedKept: 0, withoutSessionIdKept: 0 });
    const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
    const received = await receiveExactly(receiver, 3);
    expect(received.map((m) => [m.messageId, m.deadLetterReason])).toEqual([
      ['a-1', undefined],
      ['d-1', undefined],
      ['d-2', undefined],
    ]);
    expect(await adminPeek(bus, 'orders', { deadLetter: true })).toEqual([]);
  });

  it('purges an entity', async () => {
    const result = await cli.run(['servicebus', 'purge', 'orders', '--output', 'json']);
    expect(JSON.parse(result.stdout)).toEqual({ entity: 'orders', purged: 1, lockedKept: 0 });
    expect(await adminPeek(bus, 'orders')).toEqual([]);
  });

  // Azure's purge (a batch delete) skips the messages a receiver holds locked; they stay in the entity (as documented
  // for .NET's ServiceBusReceiver.PurgeMessagesAsync).
  describe('when a receiver holds messages locked', () => {
    const ids = async (entity: string, deadLetter = false): Promise<string[]> => (await adminPeek(bus, entity, { deadLetter })).map((m) => String(m.messageId));

    it('purges the rest of the entity and keeps the locked one, which its receiver then completes', async () => {
      const sender = client.createSender('plain');
      await sender.sendMessages(['kept-1', 'gone-1', 'gone-2'].map((messageId) => ({ messageId, body: messageId })));
      await sender.close();
      const receiver = client.createReceiver('plain');
      const [locked] = await receiveExactly(receiver, 1);
      expect(locked!.messageId).toBe('kept-1');

      const result = await cli.run(['servicebus', 'purge', 'plain', '--output', 'json']);
      expect(JSON.parse(result.stdout)).toEqual({ entity: 'plain', purged: 2, lockedKept: 1 });
      expect(await ids('plain')).toEqual(['kept-1']);
      await receiver.completeMessage(locked!);
      expect(await ids('plain')).toEqual([]);
      await receiver.close();
    });

    it('purges the rest of the dead-letter queue and keeps a locked dead letter, available again once its receiver abandons it', async () => {
      const sender = client.createSender('plain');
      await sender.sendMessages(['dead-kept', 'dead-gone', 'active-stays'].map((messageId) => ({ messageId, body: messageId })));
      await sender.close();
      const receiver = client.createReceiver('plain');
      const received = await receiveExactly(receiver, 3);
      for (const message of received.filter((m) => m.messageId !== 'active-stays')) await receiver.deadLetterMessage(message);
      await receiver.abandonMessage(received.find((m) => m.messageId === 'active-stays')!);
      await receiver.close();
      const deadLetters = client.createReceiver('plain', { subQueueType: 'deadLetter' });
      const [locked] = await receiveExactly(deadLetters, 1);
      expect(locked!.messageId).toBe('dead-kept');

      const result = await admin.call('DELETE', '/servicebus/entities/plain/messages?dlq=true');
      expect(result).toEqual({ entity: 'plain/$DeadLetterQueue', purged: 1, lockedKept: 1 });
      expect(await ids('plain', true)).toEqual(['dead-kept']);
      expect(await ids('plain')).toEqual(['active-stays']);
      await deadLetters.abandonMessage(locked!);
      await deadLetters.close();
      expect((await adminPeek(bus, 'plain', { deadLetter: true })).map((m) => [m.messageId, m.state])).toEqual([['dead-kept', 'active']]);
      const again = client.createReceiver('plain', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' });
      expect((await receiveExactly(again, 1)).map((m) => m.messageId)).toEqual(['dead-kept']);
      await again.close();
      // The active part was not touched; with nothing locked, its purge takes it all (the CLI's table names the new count).
      const table = await cli.run(['servicebus', 'purge', 'plain']);
      expect(table.stdout).toMatch(/^Entity\s+Purged\s+Locked Kept\n[- ]+\nplain\s+1\s+0$/m);
      expect([await ids('plain'), await ids('plain', true)]).toEqual([[], []]);
    });
  });

  it('names unknown entities clearly', async () => {
    const result = await cli.run(['servicebus', 'peek', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\(MessagingEntityNotFound\) No queue or subscription "nope"/);
    await expect(admin.call('GET', '/servicebus/entities/events/missing/messages')).rejects.toBeInstanceOf(AdminClientError);
  });

  it('refuses to start with an invalid topology named by LOCAL_AZURE_SERVICEBUS_CONFIG, naming entity and field', async () => {
    const home = mkdtempSync(join(tmpdir(), 'local-azure-bad-topology-'));
    const topology = join(home, 'bad-topology.json');
    writeFileSync(topology, JSON.stringify({ UserConfig: { Namespaces: [{ Name: 'ns', Queues: [{ Name: 'orders', Properties: { MaxDeliveryCount: 'three' } }] }] } }));
    const result = await new LocalAzureProcess({ home }).run(['start'], { LOCAL_AZURE_SERVICEBUS_CONFIG: topology });
    rmSync(home, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${topology}: Queues[0] "orders".Properties.MaxDeliveryCount: Invalid input: expected number, received string`);
  });
});
