import { AzureNamedKeyCredential } from '@azure/core-auth';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { ServiceBusAdministrationClient } from '@azure/service-bus';
import { randomBytes } from 'node:crypto';
import { dataActions, findRole } from '../../src/rbac/built-in-roles.js';
import { rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

// Who may use the management API (and rule management over $management): Azure's rights with Entra ID
// tokens. The host's identity starts with only the access file's roles (Data Sender / Receiver on some
// entities), never Data Owner; each test grants what it needs and takes it back.
describe('Service Bus management API authorization', () => {
  let bus: TestServiceBus;
  let namespaceId: string;
  let admin: ServiceBusAdministrationClient;

  /** Grants `role` on `scope` (an ARM id below the namespace, or the namespace) for the duration of `run`. */
  async function withRole<T>(role: string, scope: string, run: () => Promise<T>): Promise<T> {
    const assignment = bus.test.azure.roleAssignments.create({ principalId: bus.principalId, role: findRole(role)!, scope, source: 'cli' });
    try {
      return await run();
    } finally {
      bus.test.azure.roleAssignments.delete({ id: assignment.id });
    }
  }

  beforeAll(async () => {
    bus = await startServiceBus();
    namespaceId = bus.test.azure.directory.resourceId('serviceBus');
    admin = new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential);
  }, 30_000);
  afterAll(() => bus.stop());

  it('refuses every management call without the Manage right, with Azure’s claim wording, who was refused and the fix', async () => {
    const create = await rejectionOf(admin.createQueue('auth-new'));
    expect(create).toMatchObject({ statusCode: 401, code: 'UnauthorizedRequestError' });
    expect(create.message).toMatch(/^Authorization failed for specified action: Manage,EntityWrite\. The identity id-keyless \(client id [0-9a-f-]+, object id [0-9a-f-]+\)/);
    expect(create.message).toContain(`has no role assignment granting ${dataActions.serviceBusManage} on ${namespaceId}/queues/auth-new or an enclosing scope`);
    expect(create.message).toContain(`--role "Azure Service Bus Data Owner" --scope ${namespaceId}/queues/auth-new`);
    expect((await rejectionOf(admin.getQueue('orders'))).message).toMatch(/^Manage,EntityRead claims required for this operation\./);
    expect((await rejectionOf(admin.deleteQueue('orders'))).message).toMatch(/^Authorization failed for specified action: Manage,EntityDelete\./);
    expect(await rejectionOf(admin.getNamespaceProperties())).toMatchObject({ statusCode: 401 });
    const list = await rejectionOf((async () => {
      for await (const queue of admin.listQueues()) void queue;
    })());
    expect(list).toMatchObject({ statusCode: 401, code: 'UnauthorizedRequestError' });
    const denied = bus.test.azure.auditLog.authorizations({ limit: 50 }).find((record) => record.scope === `${namespaceId}/queues/auth-new`);
    expect(denied).toMatchObject({ resource: 'serviceBus', dataAction: dataActions.serviceBusManage, decision: 'denied', identity: 'id-keyless' });
  });

  it("refuses a name with a '.' or '..' segment to a Data Owner of the enclosing queue, and creates nothing", async () => {
    // The SDK resolves such a path before sending it; a raw request with encoded slashes does not.
    const token = (await bus.credential.getToken('https://servicebus.azure.net/.default'))!.token;
    const body = '<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml"><QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"/></content></entry>';
    await withRole('Azure Service Bus Data Owner', `${namespaceId}/queues/orders`, async () => {
      for (const name of ['orders%2F..%2Fescaped', 'orders%2F.%2Fx']) {
        const response = await fetch(`https://${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/${name}?api-version=2021-05`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/atom+xml' },
          body,
        });
        expect([name, response.status]).toEqual([name, 400]);
        expect(await response.text()).toContain('must not contain the path segment &quot;.&quot; or &quot;..&quot;');
      }
    });
    const names = await withRole('Azure Service Bus Data Owner', namespaceId, async () => {
      const all: string[] = [];
      for await (const queue of admin.listQueues()) all.push(queue.name);
      return all;
    });
    expect(names.filter((name) => name.includes('.'))).toEqual([]);
  });

  it('refuses before looking anything up, so a refusal tells nothing of what exists', async () => {
    const existing = await rejectionOf(admin.getSubscription('events', 'all'));
    const missing = await rejectionOf(admin.getSubscription('no-such-topic', 'all'));
    expect([existing, missing]).toEqual([expect.objectContaining({ statusCode: 401 }), expect.objectContaining({ statusCode: 401 })]);
    expect(await rejectionOf(admin.getRule('no-such-topic', 'all', '$Default'))).toMatchObject({ statusCode: 401 });
  });

  it('does not take Data Sender and Data Receiver for Manage', async () => {
    await withRole('Azure Service Bus Data Sender', namespaceId, () =>
      withRole('Azure Service Bus Data Receiver', namespaceId, async () => {
        expect(await rejectionOf(admin.getQueue('orders'))).toMatchObject({ statusCode: 401 });
      }),
    );
  });

  it('lets Data Owner on one queue manage that queue, and nothing else', async () => {
    await withRole('Azure Service Bus Data Owner', `${namespaceId}/queues/orders`, async () => {
      const queue = await admin.getQueue('orders');
      expect(queue.name).toBe('orders');
      await admin.updateQueue(queue);
      expect(await rejectionOf(admin.getQueue('plain'))).toMatchObject({ statusCode: 401 });
      // Listing is a namespace-level operation.
      expect(await rejectionOf(admin.listQueues().next())).toMatchObject({ statusCode: 401 });
      const allowed = bus.test.azure.auditLog.authorizations({ limit: 50 }).find((record) => record.scope === `${namespaceId}/queues/orders` && record.decision === 'allowed');
      expect(allowed).toMatchObject({ dataAction: dataActions.serviceBusManage, role: 'Azure Service Bus Data Owner' });
    });
  });

  it('refuses shared access signatures: the namespace has local authentication disabled', async () => {
    const keyed = new ServiceBusAdministrationClient(
      bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!,
      new AzureNamedKeyCredential('RootManageSharedAccessKey', randomBytes(32).toString('base64')),
    );
    const refused = await rejectionOf(keyed.getQueue('orders'));
    expect(refused).toMatchObject({ statusCode: 401, code: 'UnauthorizedRequestError' });
    expect(refused.message).toMatch(/Shared access signatures are not accepted: this namespace has local \(SAS key\) authentication disabled/);
  });

  it('refuses a token issued for another audience', async () => {
    const otherAudience: TokenCredential = {
      getToken: async (): Promise<AccessToken | null> => bus.credential.getToken('https://management.azure.com/.default'),
    };
    const refused = await rejectionOf(new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, otherAudience).getQueue('orders'));
    expect(refused).toMatchObject({ statusCode: 401 });
    expect(refused.message).toMatch(/^InvalidToken: .*audience "https:\/\/management\.azure\.com\/?" is not one of: https:\/\/servicebus\.azure\.net\//);
  });

  it('refuses setting ForwardTo without the right to send to the destination', async () => {
    await withRole('Azure Service Bus Data Owner', `${namespaceId}/queues/auth-forwarder`, async () => {
      const refused = await rejectionOf(admin.createQueue('auth-forwarder', { forwardTo: 'plain' }));
      expect(refused).toMatchObject({ statusCode: 401 });
      expect(refused.message).toMatch(/^Authorization failed for specified action: Send on the ForwardTo destination 'plain'\./);
      expect(refused.message).toContain('--role "Azure Service Bus Data Sender"');
      await withRole('Azure Service Bus Data Sender', `${namespaceId}/queues/plain`, async () => {
        expect((await admin.createQueue('auth-forwarder', { forwardTo: 'plain' })).forwardTo).toMatch(/\/plain$/);
      });
    });
  });

  describe('when managing rules over $management (ServiceBusRuleManager)', () => {
    beforeAll(async () => {
      await withRole('Azure Service Bus Data Owner', namespaceId, async () => {
        await admin.createTopic('auth-rules');
        await admin.createSubscription('auth-rules', 's');
      });
    });

    it('needs Listen (Data Receiver) on the subscription, not Manage', async () => {
      const client = bus.client();
      await withRole('Azure Service Bus Data Receiver', `${namespaceId}/topics/auth-rules/subscriptions/s`, async () => {
        const rules = client.createRuleManager('auth-rules', 's');
        await rules.createRule('red', { sqlExpression: "color = 'red'" });
        const names: string[] = [];
        for await (const rule of rules.listRules()) names.push(rule.name);
        expect(names).toEqual(['$Default', 'red']);
      });
    });

    it('refuses it without Listen with UnauthorizedAccess', async () => {
      const refused = await rejectionOf(bus.client().createRuleManager('auth-rules', 's').createRule('blue', { sqlExpression: "color = 'blue'" }));
      expect(refused).toMatchObject({ code: 'UnauthorizedAccess' });
      expect(refused.message).toMatch(/'Listen' claim\(s\) are required to perform this operation/);
    });
  });
});
