import type { TokenCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import type { AuthorizationRecord } from '../../src/audit/audit-log.js';
import { TokenIssuer } from '../../src/entra/token-issuer.js';
import { findRole } from '../../src/rbac/built-in-roles.js';
import {
  adminPeek,
  deleteBehindTheStoresBack,
  eventually,
  reauthorizationTopologyFile as topologyFile,
  rejectionOf,
  startServiceBus,
  SwitchableCredential,
  type TestServiceBus,
} from './support.js';

/** Streaming receivers re-attach after `retryDelayInMs`: short, so recovery shows within the test. */
const retries = { retryOptions: { maxRetries: 0, retryDelayInMs: 200, timeoutInMs: 5000 } };
const sender = findRole('Azure Service Bus Data Sender')!;
const receiver = findRole('Azure Service Bus Data Receiver')!;

// Authorization holds for the life of a link, not just at attach: every put-token, every role change and a
// periodic pass re-check open links; a connection acts for one principal only. Real SDK, real broker.
describe('Service Bus authorization of open links', () => {
  let bus: TestServiceBus;
  let issuer: TokenIssuer;
  let namespaceId: string;
  const clients: ServiceBusClient[] = [];

  beforeAll(async () => {
    // A periodic pass far beyond the tests: what they see comes from role changes and put-tokens.
    bus = await startServiceBus({ topologyFile, config: { resources: { serviceBus: { reauthorizationIntervalInSeconds: 300 } } } });
    issuer = new TokenIssuer(bus.test.azure.directory, bus.test.azure.keys, () => 3600);
    namespaceId = bus.test.azure.directory.resourceId('serviceBus');
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await bus.stop();
  });

  const scopeOf = (queue: string): string => `${namespaceId}/queues/${queue}`;
  const principalOf = (identity: string): string => bus.test.azure.directory.userAssignedIdentity(identity)!.principalId;
  const grant = (queue: string, ...roles: (typeof sender)[]): void => {
    for (const role of roles) bus.test.azure.roleAssignments.create({ principalId: bus.principalId, role, scope: scopeOf(queue), source: 'cli' });
  };
  const revoke = (queue: string, role: typeof sender): void => {
    expect(bus.test.azure.roleAssignments.delete({ principalId: bus.principalId, role, scope: scopeOf(queue) })).toHaveLength(1);
  };
  const clientWith = (credential: TokenCredential): ServiceBusClient => {
    const client = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, retries);
    clients.push(client);
    return client;
  };
  const denials = (predicate: (record: AuthorizationRecord) => boolean): AuthorizationRecord[] =>
    bus.test.azure.auditLog.authorizations({ limit: 500 }).filter((record) => record.decision === 'denied' && predicate(record));
  /** The bodies the broker holds for `queue` (the operator's peek shows the JSON the SDK sent). */
  const bodies = async (queue: string): Promise<unknown[]> => (await adminPeek(bus, queue)).map((row) => JSON.parse(row.body!) as unknown);

  describe('when Data Sender is revoked while a sender is open', () => {
    it('refuses its next send with UnauthorizedAccess, stores nothing it refused, and sends again once the role is back', async () => {
      grant('sends', sender);
      const link = bus.client(retries).createSender('sends');
      await link.sendMessages({ body: 'before' });
      revoke('sends', sender);
      // A send racing the re-check may still be accepted (and is then kept); the first refusal ends it.
      const accepted: string[] = [];
      let attempt = 0;
      const error = await eventually(async () => {
        const body = `attempt ${++attempt}`;
        return link.sendMessages({ body }).then(
          () => void accepted.push(body),
          (e: unknown) => e as Error & { code?: string },
        );
      }, 10_000, 'a refused send');
      expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
      expect(error.message).toContain("'Send' claim(s) are required");
      expect(denials((d) => d.scope === scopeOf('sends') && d.operation === 'role assignments changed: send to sends')).toHaveLength(1);
      grant('sends', sender);
      await link.sendMessages({ body: 'after' });
      expect(await bodies('sends')).toEqual(['before', ...accepted, 'after']);
    });
  });

  describe('when Data Receiver is revoked while a receiver is subscribed', () => {
    it('stops delivering, reports UnauthorizedAccess to processError, and resumes once the role is back', async () => {
      grant('receives', sender, receiver);
      const client = bus.client(retries);
      const received: ServiceBusReceivedMessage[] = [];
      const errors: (Error & { code?: string })[] = [];
      const subscription = client.createReceiver('receives').subscribe({
        processMessage: async (message) => void received.push(message),
        processError: async ({ error }) => void errors.push(error as Error & { code?: string }),
      });
      const send = client.createSender('receives');
      await send.sendMessages({ body: 'before' });
      await eventually(() => (received.length === 1 ? true : undefined), 5000, 'the first message');
      revoke('receives', receiver);
      await eventually(() => (errors.some((e) => e.code === 'UnauthorizedAccess') ? true : undefined), 5000, 'processError with UnauthorizedAccess');
      await send.sendMessages({ body: 'while revoked' });
      // The SDK re-attaches every 200 ms; each attempt is refused, so the message stays in the queue, unlocked.
      const refusalsBefore = errors.length;
      await eventually(() => (errors.length >= refusalsBefore + 2 ? true : undefined), 5000, 'refused re-attach attempts');
      // Between refusals the SDK also reports its own "Cannot request messages on the receiver since it is not open".
      expect(errors[0]).toMatchObject({ code: 'UnauthorizedAccess', message: expect.stringContaining("'Listen' claim(s) are required") });
      expect(errors.filter((e) => e.code === 'UnauthorizedAccess').length).toBeGreaterThanOrEqual(2);
      expect(received.map((m) => m.body)).toEqual(['before']);
      expect(await adminPeek(bus, 'receives')).toEqual([expect.objectContaining({ body: '"while revoked"', state: 'active' })]);
      grant('receives', receiver);
      await eventually(() => (received.length === 2 ? true : undefined), 5000, 'the message sent while revoked');
      expect(received.map((m) => m.body)).toEqual(['before', 'while revoked']);
      await subscription.close();
    });
  });

  describe('$management operations', () => {
    it('re-checks peek and lock renewal after a revoke, and allows them again once the role is back', async () => {
      grant('management', sender, receiver);
      const client = bus.client(retries);
      await client.createSender('management').sendMessages({ body: 'locked' });
      const link = client.createReceiver('management');
      const [message] = await link.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      expect(await link.renewMessageLock(message!)).toBeInstanceOf(Date);
      expect(await link.peekMessages(1, { fromSequenceNumber: message!.sequenceNumber! })).toHaveLength(1);
      revoke('management', receiver);
      expect(await rejectionOf(link.renewMessageLock(message!))).toMatchObject({ code: 'UnauthorizedAccess' });
      expect(await rejectionOf(link.peekMessages(1, { fromSequenceNumber: message!.sequenceNumber! }))).toMatchObject({ code: 'UnauthorizedAccess' });
      grant('management', receiver);
      expect(await link.peekMessages(1, { fromSequenceNumber: message!.sequenceNumber! })).toHaveLength(1);
      expect(await link.renewMessageLock(message!)).toBeInstanceOf(Date);
    });
  });

  describe('when a token for another principal is put on a connection', () => {
    beforeAll(() => {
      // The other principal may send: what is refused is the switch, not a missing role.
      bus.test.azure.roleAssignments.create({ principalId: principalOf('id-storefront'), role: sender, scope: scopeOf('principals-other'), source: 'cli' });
      grant('principals', sender);
      grant('principals-other', sender);
    });

    it('refuses it for a new link and keeps the connection on its first principal', async () => {
      const credential = new SwitchableCredential(issuer, bus, 'id-keyless');
      const client = clientWith(credential);
      const first = client.createSender('principals');
      await first.sendMessages({ body: 'as id-keyless' });
      credential.identity = 'id-storefront';
      const error = await rejectionOf(client.createSender('principals-other').sendMessages({ body: 'as id-storefront' }));
      expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
      expect(error.message).toContain(`already authorized for the principal with object id ${bus.principalId}`);
      expect(denials((d) => d.principalId === principalOf('id-storefront') && d.operation?.startsWith('put-token for') === true)).toEqual([
        expect.objectContaining({ reason: `the connection is authorized for principal ${bus.principalId}; a token for another principal is refused` }),
      ]);
      await first.sendMessages({ body: 'still as id-keyless' });
      expect(await bodies('principals-other')).toEqual([]);
    });

    it('refuses a renewal for another principal and never switches the open link to it', async () => {
      const credential = new SwitchableCredential(issuer, bus, 'id-keyless', 300);
      const link = clientWith(credential).createSender('principals');
      await link.sendMessages({ body: 'before the renewal' });
      const refusedBefore = denials((d) => d.operation?.startsWith('put-token for') === true).length;
      credential.identity = 'id-storefront';
      credential.renewAfterInMs = 3_600_000;
      await eventually(() => (denials((d) => d.operation?.startsWith('put-token for') === true).length > refusedBefore ? true : undefined), 10_000, 'the refused renewal');
      // id-storefront has no role on "principals": had the link switched to it, the renewal would have detached it.
      await link.sendMessages({ body: 'after the refused renewal' });
      expect(await bodies('principals')).toEqual(expect.arrayContaining(['before the renewal', 'after the refused renewal']));
    });
  });

  describe('when a role is revoked behind the store’s back (another process writes the database)', () => {
    it('detaches the link at its next put-token renewal', async () => {
      grant('renewals', sender);
      const credential = new SwitchableCredential(issuer, bus, 'id-keyless', 300);
      const link = clientWith(credential).createSender('renewals');
      await link.sendMessages({ body: 'before' });
      expect(deleteBehindTheStoresBack(bus, scopeOf('renewals'))).toBeGreaterThan(0);
      // Sends go through until the next renewal (at most ~300 ms away) re-checks the role and detaches the link.
      const error = await eventually(
        async () => {
          const failure = await link.sendMessages({ body: 'until refused' }).then(() => undefined, (e: unknown) => e as Error & { code?: string });
          if (!failure) await new Promise((resolve) => setTimeout(resolve, 50));
          return failure;
        },
        10_000,
        'a refused send',
      );
      expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
      // The put-token noticed the change: it re-checks its own links, and every other link once the change is seen.
      expect(denials((d) => d.scope === scopeOf('renewals')).at(-1)).toMatchObject({ operation: expect.stringMatching(/^(put-token|role assignments changed): send to renewals$/) });
      grant('renewals', sender);
      await link.sendMessages({ body: 'after' });
      expect((await bodies('renewals')).at(-1)).toBe('after');
    });
  });
});
