import { ServiceBusAdministrationClient, type ServiceBusClient } from '@azure/service-bus';
import { receiveExactly, startServiceBus, type TestServiceBus } from '../servicebus/support.js';
import { portalCaller, type PortalCaller } from './support.js';

// The portal's Service Bus page against a real broker: the counts it shows are the ones Service Bus reports through
// its management API (the SDK's runtime properties), so the portal, ARM and the SDK never disagree.
describe('The portal: Service Bus', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  let admin: ServiceBusAdministrationClient;
  let portal: PortalCaller;

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    admin = new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential);
    portal = portalCaller(bus.test);
  });
  afterAll(() => bus.stop());

  /** The cells of an entity's row, as text, from the Type column on. */
  const row = (page: string, entity: string): string[] => {
    const found = new RegExp(`<tr><th scope="row" class="name">${entity}</th>(.*?)</tr>`, 's').exec(page);
    if (!found) throw new Error(`no row for ${entity}`);
    return [...found[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) => m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim());
  };

  it("shows Active, Scheduled, Dead-letter, Transfer and Transfer dead-letter as the management API reports them, deferred and locked messages among the active", async () => {
    const sender = client.createSender('plain');
    await sender.sendMessages([1, 2, 3, 4].map((n) => ({ body: n })));
    await sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 3_600_000));
    const receiver = client.createReceiver('plain');
    const [deferred, deadLettered] = await receiveExactly(receiver, 3, 10_000);
    await receiver.deferMessage(deferred!);
    await receiver.deadLetterMessage(deadLettered!);
    // The third stays locked by this receiver; the fourth was never received.

    const runtime = await admin.getQueueRuntimeProperties('plain');
    expect(runtime).toMatchObject({ activeMessageCount: 3, scheduledMessageCount: 1, deadLetterMessageCount: 1, transferMessageCount: 0, transferDeadLetterMessageCount: 0 });
    const { cookie } = await portal.signIn();
    const page = (await portal.call('/servicebus', { cookie })).body;
    expect(page).toContain('<th scope="col">Active</th><th scope="col">Scheduled</th><th scope="col">Dead-letter</th><th scope="col">Transfer</th><th scope="col">Transfer dead-letter</th>');
    expect(row(page, 'plain').slice(0, 6)).toEqual(['queue', `${runtime.activeMessageCount} of which 1 deferred, 1 locked`, `${runtime.scheduledMessageCount}`, `${runtime.deadLetterMessageCount}`, `${runtime.transferMessageCount}`, `${runtime.transferDeadLetterMessageCount}`]);
    await receiver.close();
  });

  it("shows a topic's scheduled messages as the management API counts them, and no active or dead-letter count of its own", async () => {
    await client.createSender('events').scheduleMessages({ body: 'later' }, new Date(Date.now() + 3_600_000));
    const runtime = await admin.getTopicRuntimeProperties('events');
    expect(runtime.scheduledMessageCount).toBe(1);
    const { cookie } = await portal.signIn();
    expect(row((await portal.call('/servicebus', { cookie })).body, 'events').slice(0, 6)).toEqual(['topic', '—', '1', '—', '—', '—']);
  });

  it('filters the entities by name, without echoing the filter outside its search box', async () => {
    const { cookie } = await portal.signIn();
    const page = (await portal.call('/servicebus?filter=EVENTS', { cookie })).body;
    const names = [...page.matchAll(/<th scope="row" class="name">([^<]+)<\/th>/g)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(1);
    expect(names.every((name) => name!.toLowerCase().includes('events'))).toBe(true);
    expect(page).toContain(`<caption>${names.length} of `);
    expect(page).toContain('<input id="entity-filter" type="search" name="filter" value="EVENTS">');
    const spoof = 'Your session expired, sign in at evil.example';
    const none = (await portal.call(`/servicebus?filter=${encodeURIComponent(spoof)}`, { cookie })).body;
    expect(none).toContain('No queue, topic or subscription name contains the filter');
    expect(none.split('evil.example').length - 1).toBe(1);
  });

  it('counts the dead-lettered messages of the whole namespace on the overview, and refreshes its cards when assignments change', async () => {
    const { cookie } = await portal.signIn();
    let total = 0;
    for await (const queue of admin.listQueuesRuntimeProperties()) total += queue.deadLetterMessageCount;
    for await (const subscription of admin.listSubscriptionsRuntimeProperties('events')) total += subscription.deadLetterMessageCount;
    expect(total).toBeGreaterThan(0);
    const overview = (await portal.call('/', { cookie })).body;
    expect(overview).toMatch(new RegExp(`<strong>${total}</strong> dead-lettered messages? <a href="/servicebus">Service Bus</a>`));
    expect(overview).toContain('id="overview-cards" data-live="alert authorization sign-in assignment"');
  });
});
