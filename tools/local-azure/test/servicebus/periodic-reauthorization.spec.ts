import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { deleteBehindTheStoresBack, eventually, reauthorizationTopologyFile, startServiceBus, type TestServiceBus } from './support.js';

const retries = { retryOptions: { maxRetries: 0, retryDelayInMs: 200, timeoutInMs: 5000 } };

// The periodic re-check is the bound that holds when no listener hears of a change and no token is put:
// here a role assignment deleted by another process while links stay open with a 24-hour token.
describe('Service Bus periodic re-check of open links (reauthorizationIntervalInSeconds: 1)', () => {
  let bus: TestServiceBus;
  let scope: string;

  beforeAll(async () => {
    bus = await startServiceBus({ topologyFile: reauthorizationTopologyFile, config: { resources: { serviceBus: { reauthorizationIntervalInSeconds: 1 } } } });
    scope = `${bus.test.azure.directory.resourceId('serviceBus')}/queues/out-of-band`;
    for (const role of ['Azure Service Bus Data Sender', 'Azure Service Bus Data Receiver']) {
      bus.test.azure.roleAssignments.create({ principalId: bus.principalId, role: findRole(role)!, scope, source: 'cli' });
    }
  });
  afterAll(() => bus.stop());

  it('detaches the sender and the receiver within the bound, then both work again once the role is back', async () => {
    const client = bus.client(retries);
    const received: ServiceBusReceivedMessage[] = [];
    const errors: (Error & { code?: string })[] = [];
    const subscription = client.createReceiver('out-of-band').subscribe({
      processMessage: async (message) => void received.push(message),
      processError: async ({ error }) => void errors.push(error as Error & { code?: string }),
    });
    const sender = client.createSender('out-of-band');
    await sender.sendMessages({ body: 'before' });
    await eventually(() => (received.length === 1 ? true : undefined), 5000, 'the first message');

    expect(deleteBehindTheStoresBack(bus, scope)).toBe(2);
    await eventually(() => (errors.some((e) => e.code === 'UnauthorizedAccess') ? true : undefined), 10_000, 'the receiver refused within the bound');
    const refused = await eventually(
      () => sender.sendMessages({ body: 'after the revoke' }).then(() => undefined, (error: unknown) => error as Error & { code?: string }),
      10_000,
      'a refused send',
    );
    expect(refused).toMatchObject({ code: 'UnauthorizedAccess' });
    const denied = bus.test.azure.auditLog.authorizations({ limit: 100 }).filter((d) => d.decision === 'denied' && d.scope === scope);
    expect(denied.map((d) => d.operation)).toEqual(expect.arrayContaining(['periodic re-check: receive from out-of-band']));

    for (const role of ['Azure Service Bus Data Sender', 'Azure Service Bus Data Receiver']) {
      bus.test.azure.roleAssignments.create({ principalId: bus.principalId, role: findRole(role)!, scope, source: 'cli' });
    }
    await sender.sendMessages({ body: 'back' });
    await eventually(() => (received.some((m) => m.body === 'back') ? true : undefined), 10_000, 'delivery once the role is back');
    await subscription.close();
  }, 30_000);
});
