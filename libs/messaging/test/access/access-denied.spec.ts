import { Controller, Module, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AccessDeniedError, AuthModule, AzureClientFactory, isAccessDeniedError } from '@keyless/auth';
import { findRole, queues, subscriptions, topics, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { RecordingLogger, rejectionOf, waitFor } from '@keyless/testing';
import { MessagingClient, MessagingModule, OnEvent, OnRequest, ServiceBusServer, type MessagingModuleOptions } from '../../src/index.js';
import { MemoryIdempotencyStore } from '../../src/testing/index.js';
import { shortRetries, startTestBus, type TestBus } from '../support/test-bus.js';
import { testProduct } from '../support/messaging-apps.js';

@Controller()
class ProductHandlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  upserted(): Promise<void> {
    return Promise.resolve();
  }
}

/** An app wired like the services: `AuthModule` (the one credential) and `MessagingModule` with the factory's bus client. */
async function startApp(bus: TestBus, messaging: Omit<MessagingModuleOptions, 'client'>, logger: RecordingLogger, controllers: Type[] = []): Promise<INestApplication> {
  class AccessTestModule {}
  Module({
    imports: [
      AuthModule.forRoot({
        clientId: bus.env.AZURE_CLIENT_ID!,
        audiences: ['serviceBus'],
        resources: { serviceBus: { fullyQualifiedNamespace: bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, resourceId: bus.env.SERVICEBUS_NAMESPACE_RESOURCE_ID! } },
        logger,
      }),
      MessagingModule.forRootAsync({
        inject: [AzureClientFactory],
        useFactory: (clients: AzureClientFactory) => ({ client: clients.create('serviceBus', { clientOptions: shortRetries }), ...messaging }),
      }),
    ],
    controllers,
  })(AccessTestModule);
  const app = await NestFactory.create(AccessTestModule, { logger, abortOnError: false });
  if (messaging.server) app.connectMicroservice({ strategy: app.get(ServiceBusServer) }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

/** Applies a printed `npm run local-azure -- role assignment create …` through the admin API, as the CLI does. */
async function applyFix(bus: TestBus, command: string): Promise<number> {
  const args = Object.fromEntries([...command.matchAll(/--([\w-]+) (?:"([^"]*)"|(\S+))/g)].map((m) => [m[1]!, m[2] ?? m[3]!]));
  const response = await fetch(`${bus.test.azure.endpoints.management}/roleAssignments`, {
    method: 'POST',
    // As the CLI does it: signed in as the operator (Owner of the subscription).
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await bus.test.operatorToken()}` },
    body: JSON.stringify({ assignee: args['assignee-object-id'], role: args.role, scope: args.scope }),
  });
  return response.status;
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
// Roles are checked at every link attach locally, so a revocation shows on the next link (Azure: minutes).
describe('The transport\'s access-denied boundary against the local Service Bus (host "gateway")', () => {
  let bus: TestBus;
  let namespaceId: string;
  let shared: { clientId: string; principalId: string };
  let apps: INestApplication[] = [];
  let appsStarted = 0;
  const start = async (messaging: Omit<MessagingModuleOptions, 'client'>, logger = new RecordingLogger(), controllers: Type[] = [ProductHandlers]) => {
    const app = await startApp(bus, messaging, logger, controllers);
    apps.push(app);
    appsStarted++;
    return app;
  };
  /** Closes the apps of earlier cases (their links stay attached, whatever the roles now say) and restores access.json's roles. */
  const fresh = async () => {
    for (const app of apps) await app.close();
    apps = [];
    bus.test.azure.applyAccessFile();
  };
  const revoke = (role: string, scope: string) =>
    expect(bus.test.azure.roleAssignments.delete({ principalId: shared.principalId, role: findRole(role)!, scope })).toHaveLength(1);

  beforeAll(async () => {
    bus = await startTestBus();
    namespaceId = bus.env.SERVICEBUS_NAMESPACE_RESOURCE_ID!;
    shared = bus.test.azure.directory.findIdentity(bus.env.AZURE_CLIENT_ID!)!;
  });
  afterAll(async () => {
    await fresh();
    await bus?.stop();
  });

  describe('when Azure Service Bus Data Sender is revoked on the request queue', () => {
    let requester: MessagingClient;
    let denied: AccessDeniedError;

    beforeAll(async () => {
      await fresh();
      revoke('Azure Service Bus Data Sender', `${namespaceId}/queues/${queues.recommendationRequests}`);
      requester = (await start({ proxy: { replyQueue: queues.replies, instanceId: 'access-requester', requestTimeoutInMs: 10_000 } }, new RecordingLogger(), [])).get(MessagingClient);
      const error = await rejectionOf(requester.request('recommendation.get-product', { id: 'refused-1' }));
      expect(isAccessDeniedError(error)).toBe(true);
      denied = error as AccessDeniedError;
    });

    it('rejects the request at once with AccessDeniedError naming principal, data action, role and the queue\'s scope', () => {
      const scope = `${namespaceId}/queues/${queues.recommendationRequests}`;
      expect(denied).toMatchObject({
        resource: 'serviceBus',
        principal: { type: 'ServicePrincipal', clientId: shared.clientId, objectId: shared.principalId },
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/send/action',
        role: { name: 'Azure Service Bus Data Sender', id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' },
        scope,
        fixCommand: `az role assignment create --assignee-object-id ${shared.principalId} --assignee-principal-type ServicePrincipal --role "Azure Service Bus Data Sender" --scope ${scope}`,
      });
      expect(denied.cause).toMatchObject({ name: 'ServiceBusError', code: 'UnauthorizedAccess' });
    });

    it('answers the request once the printed command is applied', async () => {
      await start({ server: { requests: { queue: queues.recommendationRequests }, idempotencyStore: new MemoryIdempotencyStore() } });
      expect(await applyFix(bus, denied.localFixCommand)).toBe(201);
      await expect(requester.request('recommendation.get-product', { id: 'fixed-1' })).resolves.toMatchObject({ product: { id: 'fixed-1' } });
    });
  });

  it('rejects a publish with AccessDeniedError naming the topic\'s scope when Data Sender is revoked on the topic', async () => {
    await fresh();
    const scope = `${namespaceId}/topics/${topics.events}`;
    revoke('Azure Service Bus Data Sender', scope);
    const publisher = (await start({ proxy: {} }, new RecordingLogger(), [])).get(MessagingClient);
    const error = await rejectionOf(publisher.publish('catalog.product.upserted', { product: testProduct('refused-2'), upsertedAt: new Date().toISOString() }));
    expect(error).toBeInstanceOf(AccessDeniedError);
    expect(error).toMatchObject({ role: { name: 'Azure Service Bus Data Sender' }, scope });
  });

  it('reports a subscription\'s refused receive as AccessDeniedError naming Data Receiver and the subscription\'s scope', async () => {
    await fresh();
    const scope = `${namespaceId}/topics/${topics.events}/subscriptions/${subscriptions.vision}`;
    revoke('Azure Service Bus Data Receiver', scope);
    const logger = new RecordingLogger();
    const server = (await start({ server: { events: [{ topic: topics.events, subscription: subscriptions.vision }], idempotencyStore: new MemoryIdempotencyStore() } }, logger)).get(ServiceBusServer);
    const health = await waitFor('the receiver\'s error', () => server.health().find((receiver) => receiver.lastError));
    expect(health.lastError).toMatch(/^receive: AccessDeniedError: /);
    expect(health.lastError).toContain('"Azure Service Bus Data Receiver"');
    expect(health.lastError).toContain(scope);
    expect(logger.messages('warn').some((line) => line.includes('AccessDeniedError') && line.includes(`--scope ${scope}`))).toBe(true);
  });

  it('logs a reply that cannot be sent for lack of Data Sender on the reply queue as AccessDeniedError', async () => {
    await fresh();
    const scope = `${namespaceId}/queues/${queues.replies}`;
    const requester = (await start({ proxy: { replyQueue: queues.replies, instanceId: 'access-requester-2', requestTimeoutInMs: 3_000 } }, new RecordingLogger(), [])).get(MessagingClient);
    // Revoked before the service opens its reply link (at its first reply).
    revoke('Azure Service Bus Data Sender', scope);
    const logger = new RecordingLogger();
    await start({ server: { requests: { queue: queues.recommendationRequests }, idempotencyStore: new MemoryIdempotencyStore() } }, logger);
    await rejectionOf(requester.request('recommendation.get-product', { id: 'unanswered-1' }));
    const line = await waitFor('the reply failure', () => logger.messages('error').find((l) => l.includes('(recommendation.get-product) cannot be sent')));
    expect(line).toContain('AccessDeniedError');
    expect(line).toContain(`--role "Azure Service Bus Data Sender" --scope ${scope}`);
  });

  it('leaves every other error as the SDK\'s own', async () => {
    await fresh();
    const server = (await start({ server: { requests: { queue: 'no-such-queue' }, idempotencyStore: new MemoryIdempotencyStore() } })).get(ServiceBusServer);
    const health = await waitFor('the receiver\'s error', () => server.health().find((receiver) => receiver.lastError));
    expect(health.lastError).toMatch(/^receive: ServiceBusError: The messaging entity '.+\/no-such-queue' could not be found/);
    expect(health.lastError).not.toContain('AccessDenied');
  });

  it('signs in to Service Bus once for every app and link of the run: CBS takes the token from the cache', () => {
    const signIns = bus.test.azure.auditLog.signIns({ limit: 200 }).filter((s) => s.resource === 'https://servicebus.azure.net/');
    expect(appsStarted).toBeGreaterThan(5);
    expect(signIns).toHaveLength(1);
  });
});
