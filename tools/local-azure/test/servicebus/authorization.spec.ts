import type { AccessToken, TokenCredential } from '@azure/identity';
import { AzureNamedKeyCredential } from '@azure/core-auth';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import rhea, { type EventContext } from 'rhea';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TokenIssuer } from '../../src/entra/token-issuer.js';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { receiveExactly, rejectionOf, shortRetries, startServiceBus, type TestServiceBus } from './support.js';

// Keyless authorization against the project's own topology and access file: Entra ID tokens on $cbs,
// RBAC per link with the access file's role assignments, SAS refused, unrenewed tokens detach links.
describe('Service Bus authorization', () => {
  let bus: TestServiceBus;
  let namespaceId: string;
  /** Token expiry needs a few seconds: started first, checked in its own test. */
  let expiry: Promise<{ received: ServiceBusReceivedMessage[]; error: Error & { code?: string } }>;

  beforeAll(async () => {
    bus = await startServiceBus({ topologyFile: null });
    namespaceId = bus.test.azure.directory.resourceId('serviceBus');
    expiry = (async () => {
      const issuer = new TokenIssuer(bus.test.azure.directory, bus.test.azure.keys, () => 3);
      const identity = bus.test.azure.directory.userAssignedIdentity('id-keyless')!;
      const { accessToken } = await issuer.issue(identity, 'https://servicebus.azure.net/');
      // A credential whose renewal silently never happens: it claims a long life for a 3-second token.
      const stale: TokenCredential = { getToken: async (): Promise<AccessToken> => ({ token: accessToken, expiresOnTimestamp: Date.now() + 3_600_000 }) };
      const client = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, stale, shortRetries);
      // The events topic and its vision subscription: no other test here uses them.
      await client.createSender('events').sendMessages({ body: 'before expiry', messageId: 'expiry-probe', subject: 'catalog.product.upserted' });
      const received: ServiceBusReceivedMessage[] = [];
      const error = await new Promise<Error & { code?: string }>((resolve) => {
        client.createReceiver('events', 'vision', { receiveMode: 'receiveAndDelete' }).subscribe({
          processMessage: async (message) => void received.push(message),
          processError: async ({ error }) => resolve(error as Error & { code?: string }),
        });
      });
      await client.close();
      return { received, error };
    })();
    expiry.catch(() => undefined);
  });
  afterAll(() => bus.stop());

  it('writes the namespace and its ARM id into every host’s env file', () => {
    const envFile = readFileSync(bus.test.azure.home.envFile('vision'), 'utf8');
    expect(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE).toMatch(/^localhost:\d+$/);
    expect(envFile).toContain(`SERVICEBUS_FULLY_QUALIFIED_NAMESPACE=${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}`);
    expect(envFile).toContain(`SERVICEBUS_NAMESPACE_RESOURCE_ID=${namespaceId}`);
    expect(namespaceId).toMatch(/^\/subscriptions\/[0-9a-f-]{36}\/resourceGroups\/rg-keyless-local\/providers\/Microsoft\.ServiceBus\/namespaces\/sb-keyless-local$/);
  });

  it('lets the shared identity send and receive where the access file grants it, and logs each decision', async () => {
    const client = bus.client();
    await client.createSender('recommendation-requests').sendMessages({ body: { productId: 'p-1' } });
    const [message] = await receiveExactly(client.createReceiver('recommendation-requests', { receiveMode: 'receiveAndDelete' }), 1);
    expect(message!.body).toEqual({ productId: 'p-1' });
    const decisions = bus.test.azure.auditLog.authorizations({ limit: 100 }).filter((d) => d.scope === `${namespaceId}/queues/recommendation-requests`);
    expect(decisions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ resource: 'serviceBus', identity: 'id-keyless', decision: 'allowed', role: 'Azure Service Bus Data Sender', operation: 'send to recommendation-requests' }),
        expect.objectContaining({ decision: 'allowed', role: 'Azure Service Bus Data Receiver', operation: 'receive from recommendation-requests' }),
      ]),
    );
  });

  it('refuses receiving without the receive role with UnauthorizedAccess that names the role and the fix', async () => {
    const error = await rejectionOf(bus.client().createReceiver('diagnostics').receiveMessages(1, { maxWaitTimeInMs: 1000 }));
    expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
    expect(error.message).toContain("'Listen' claim(s) are required");
    expect(error.message).toContain(`--role "Azure Service Bus Data Receiver" --scope ${namespaceId}/queues/diagnostics`);
    expect(bus.test.azure.auditLog.authorizations({ limit: 10 })).toContainEqual(
      expect.objectContaining({ decision: 'denied', scope: `${namespaceId}/queues/diagnostics`, dataAction: 'Microsoft.ServiceBus/namespaces/messages/receive/action' }),
    );
  });

  it('refuses the next link once the role assignment is deleted', async () => {
    const client = bus.client();
    await client.createSender('vision-requests').sendMessages({ body: 'allowed' });
    const deleted = bus.test.azure.roleAssignments.delete({
      principalId: bus.principalId,
      role: findRole('Azure Service Bus Data Sender')!,
      scope: `${namespaceId}/queues/vision-requests`,
    });
    expect(deleted).toHaveLength(1);
    const error = await rejectionOf(bus.client().createSender('vision-requests').sendMessages({ body: 'denied' }));
    expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
    expect(error.message).toContain("'Send' claim(s) are required");
    // Re-applying the access file (as a redeployment would) restores it.
    bus.test.azure.applyAccessFile();
    await bus.client().createSender('vision-requests').sendMessages({ body: 'allowed again' });
  });

  it('refuses shared access signatures: local authentication is disabled', async () => {
    // A key generated for this test only: the broker must refuse any SAS, whatever the key.
    const sas = new AzureNamedKeyCredential('RootManageSharedAccessKey', randomBytes(32).toString('base64'));
    const client = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, sas, shortRetries);
    const error = await rejectionOf(client.createSender('recommendation-requests').sendMessages({ body: 'x' }));
    await client.close();
    expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
    expect(error.message).toMatch(/Shared access signatures are not accepted/);
  });

  it('refuses a token issued for another audience', async () => {
    const cognitive: TokenCredential = { getToken: () => bus.credential.getToken('https://cognitiveservices.azure.com/.default') };
    const client = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, cognitive, shortRetries);
    const error = await rejectionOf(client.createSender('recommendation-requests').sendMessages({ body: 'x' }));
    await client.close();
    expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
    expect(error.message).toMatch(/wrong-audience/);
  });

  describe('when a client speaks AMQP itself, past the SDK', () => {
    /** A raw AMQP connection (rhea, what the SDK runs on) with SASL ANONYMOUS, and a way to put a token on its $cbs. */
    async function rawConnection(): Promise<{ putToken(name: string, token: string): Promise<number>; attach(kind: 'sender' | 'receiver', address: string): Promise<string | undefined>; close(): void }> {
      const [host, port] = bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':');
      const connection = rhea.create_container().connect({ host, port: Number(port), transport: 'tls', servername: host, reconnect: false } as Parameters<ReturnType<typeof rhea.create_container>['connect']>[0]);
      await new Promise<void>((resolve, reject) => {
        connection.once('connection_open', () => resolve());
        connection.once('disconnected', (context: { error?: Error }) => reject(context.error ?? new Error('disconnected')));
      });
      const cbsSender = connection.open_sender('$cbs');
      const cbsReceiver = connection.open_receiver({ source: { address: '$cbs' }, target: { address: 'raw-cbs-replies' } });
      return {
        putToken: (name, token) =>
          new Promise((resolve) => {
            cbsReceiver.once('message', ({ message }: EventContext) => resolve(Number(message!.application_properties!['status-code'])));
            const send = (): void => void cbsSender.send({
              body: token,
              reply_to: 'raw-cbs-replies',
              message_id: randomBytes(8).toString('hex'),
              application_properties: { operation: 'put-token', type: 'jwt', name, expiration: Date.now() + 3_600_000 },
            });
            if (cbsSender.sendable()) send();
            else cbsSender.once('sendable', send);
          }),
        // The error condition the broker detaches with, or undefined when the link opened.
        attach: (kind, address) =>
          new Promise((resolve) => {
            const link = kind === 'sender' ? connection.open_sender(address) : connection.open_receiver(address);
            link.once(kind === 'sender' ? 'sender_open' : 'receiver_open', () => setImmediate(() => resolve(link.is_open() ? undefined : 'closed')));
            link.once(kind === 'sender' ? 'sender_error' : 'receiver_error', (context: EventContext) => {
              const error = (context.sender ?? context.receiver)!.error as { condition?: string; description?: string } | undefined;
              resolve(`${error?.condition}: ${error?.description}`);
            });
          }),
        close: () => connection.close(),
      };
    }

    it("refuses a link on an entity that no token put on $cbs covers, though the identity holds the role there", async () => {
      const raw = await rawConnection();
      try {
        const token = (await bus.credential.getToken('https://servicebus.azure.net/.default'))!.token;
        const [host] = bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':');
        // Nothing put yet: no link, and the same refusal whether the entity exists or not.
        expect(await raw.attach('sender', 'vision-requests')).toMatch(/^amqp:unauthorized-access: .*No valid token/);
        expect(await raw.attach('sender', 'no-such-queue')).toMatch(/^amqp:unauthorized-access: .*No valid token/);
        expect(await raw.attach('receiver', 'no-such-queue')).toMatch(/^amqp:unauthorized-access: .*No valid token/);
        expect(await raw.putToken(`sb://${host}/recommendation-requests`, token)).toBe(202);
        expect(await raw.attach('sender', 'recommendation-requests')).toBeUndefined();
        // id-keyless may send to vision-requests too: what is refused is using the token put for another entity.
        for (const address of ['vision-requests', 'vision-requests/$management']) {
          expect([address, await raw.attach('sender', address)]).toEqual([address, expect.stringMatching(/^amqp:unauthorized-access: .*No valid token for '.*vision-requests/)]);
        }
        // Beneath its own entity's address, an entity that does not exist is one (the token covers the name).
        expect(await raw.attach('sender', 'recommendation-requests/../vision-requests')).toMatch(/^amqp:not-found: /);
        // Its own entity's $management (the SDK's peek, lock renewal) is covered by the token put for the entity.
        expect(await raw.attach('sender', 'recommendation-requests/$management')).toBeUndefined();
      } finally {
        raw.close();
      }
    });
  });

  it('detaches a link whose token expires without renewal: the receiver reports UnauthorizedAccess', async () => {
    const { received, error } = await expiry;
    expect(received.map((m) => m.messageId)).toEqual(['expiry-probe']);
    expect(error).toMatchObject({ code: 'UnauthorizedAccess' });
    expect(error.message).toMatch(/expired/);
  }, 15_000);
});
