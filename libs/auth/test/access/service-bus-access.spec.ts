import { randomUUID } from 'node:crypto';
import { ServiceBusClient as SdkServiceBusClient } from '@azure/service-bus';
import { Test, type TestingModule } from '@nestjs/testing';
import { dataPlanes, findRole } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { AccessDeniedError, AuthModule, AzureClientFactory, isAccessDeniedError, type ServiceBusClient } from '../../src/index.js';
import { RecordingLogger } from '../support/recording.logger.js';
import { waitFor } from '../support/wait-for.js';

/** Applies a printed `npm run local-azure -- role assignment create …` through the admin API, as the CLI does. */
async function applyFix(test: TestAzure, command: string): Promise<number> {
  const args = Object.fromEntries([...command.matchAll(/--([\w-]+) (?:"([^"]*)"|(\S+))/g)].map((m) => [m[1]!, m[2] ?? m[3]!]));
  const response = await fetch(`${test.azure.endpoints.management}/roleAssignments`, {
    method: 'POST',
    // As the CLI does it: signed in as the operator (Owner of the subscription).
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await test.operatorToken()}` },
    body: JSON.stringify({ assignee: args['assignee-object-id'], role: args.role, scope: args.scope }),
  });
  return response.status;
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// Roles are checked at every link attach locally, so a revocation shows on the next link (Azure: minutes).
describe('The Service Bus client of AzureClientFactory against the local Service Bus (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let bus: ServiceBusClient;
  let shared: { clientId: string; principalId: string };
  let namespaceId: string;

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes });
    env = test.enterHost('gateway');
    shared = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!;
    namespaceId = env.SERVICEBUS_NAMESPACE_RESOURCE_ID!;
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['serviceBus'],
          resources: { serviceBus: { fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, resourceId: namespaceId } },
          logger: new RecordingLogger(),
        }),
      ],
    }).compile();
    await module.init();
    bus = module.get(AzureClientFactory).create('serviceBus', { clientOptions: { retryOptions: { maxRetries: 0, retryDelayInMs: 100, timeoutInMs: 5_000 } } });
  });
  afterAll(async () => {
    await bus?.close();
    await module?.close();
    await test?.stop();
  });

  const serviceBusSignIns = () => test.azure.auditLog.signIns({ limit: 100 }).filter((s) => s.resource === 'https://servicebus.azure.net/');

  it('sends and receives as the shared identity with the token held since startup (CBS takes it from the cache)', async () => {
    const body = { id: randomUUID() };
    const sender = bus.createSender('vision-requests');
    await sender.sendMessages({ body });
    const receiver = bus.createReceiver('vision-requests');
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
    expect(message?.body).toEqual(body);
    await receiver.completeMessage(message!);
    await Promise.all([sender.close(), receiver.close()]);
    expect(serviceBusSignIns()).toHaveLength(1);
  });

  it('leaves every other error as the SDK\'s own, and stays a ServiceBusClient', async () => {
    const sender = bus.createSender('no-such-queue');
    const error = await sender.sendMessages({ body: 'lost' }).catch((e: unknown) => e);
    await sender.close();
    expect(error).toMatchObject({ name: 'ServiceBusError', code: 'MessagingEntityNotFound' });
    expect(bus).toBeInstanceOf(SdkServiceBusClient);
  });

  describe('when Azure Service Bus Data Sender is revoked on a queue', () => {
    let denied: AccessDeniedError;

    beforeAll(async () => {
      const scope = `${namespaceId}/queues/vision-requests`;
      expect(test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Azure Service Bus Data Sender')!, scope })).toHaveLength(1);
      const sender = bus.createSender('vision-requests');
      const error = await sender.sendMessages({ body: 'refused' }).catch((e: unknown) => e);
      await sender.close();
      expect(isAccessDeniedError(error)).toBe(true);
      denied = error as AccessDeniedError;
    });

    it('rejects the send with AccessDeniedError naming principal, data action, role and the queue\'s scope', () => {
      expect(denied).toMatchObject({
        resource: 'serviceBus',
        principal: { type: 'ServicePrincipal', clientId: shared.clientId, objectId: shared.principalId },
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/send/action',
        role: { name: 'Azure Service Bus Data Sender', id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' },
        scope: `${namespaceId}/queues/vision-requests`,
        fixCommand: `az role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Azure Service Bus Data Sender" --scope ${namespaceId}/queues/vision-requests`,
      });
      expect(denied.cause).toMatchObject({ name: 'ServiceBusError', code: 'UnauthorizedAccess' });
    });

    it('sends again once the printed command is applied', async () => {
      expect(await applyFix(test, denied.localFixCommand)).toBe(201);
      const sender = bus.createSender('vision-requests');
      await expect(sender.sendMessages({ body: 'accepted' })).resolves.toBeUndefined();
      await sender.close();
    });
  });

  describe('when Azure Service Bus Data Receiver is revoked on a subscription', () => {
    const scope = () => `${namespaceId}/topics/events/subscriptions/vision`;

    beforeAll(() => {
      expect(test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole('Azure Service Bus Data Receiver')!, scope: scope() })).toHaveLength(1);
    });

    it('rejects receiveMessages with AccessDeniedError naming Data Receiver and the subscription\'s scope', async () => {
      const receiver = bus.createReceiver('events', 'vision');
      const error = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2_000 }).catch((e: unknown) => e);
      await receiver.close();
      expect(error).toBeInstanceOf(AccessDeniedError);
      expect(error).toMatchObject({
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
        role: { name: 'Azure Service Bus Data Receiver' },
        scope: scope(),
      });
    });

    it('hands subscribe\'s processError an AccessDeniedError', async () => {
      const receiver = bus.createReceiver('events', 'vision');
      const errors: unknown[] = [];
      const subscription = receiver.subscribe({ processMessage: async () => undefined, processError: async ({ error }) => void errors.push(error) });
      const error = await waitFor('processError', () => errors[0]);
      await subscription.close();
      await receiver.close();
      expect(error).toBeInstanceOf(AccessDeniedError);
      expect(error).toMatchObject({ role: { name: 'Azure Service Bus Data Receiver' }, scope: scope() });
    });
  });
});
