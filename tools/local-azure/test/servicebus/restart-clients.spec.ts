import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusReceiver } from '@azure/service-bus';
import { LocalAzureProcess } from '../../src/testing/index.js';
import { testTopologyFile } from './support.js';

const waitFor = async (what: string, check: () => boolean, timeoutInMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutInMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

// A sender and a streaming receiver of the real SDK, created once, keep working across a SIGKILL of the
// local Azure (a child process with no configured ports) and its restart on the same home: every send
// the SDK acknowledged is received, by the same receiver, without the test re-creating any client.
describe('SDK clients across a SIGKILL and restart of the local Azure', () => {
  const azure = new LocalAzureProcess({ config: { resources: { serviceBus: { topologyFile: testTopologyFile } } } });
  let client: ServiceBusClient;
  let receiver: ServiceBusReceiver;

  beforeAll(async () => {
    await azure.start();
    const granted = await azure.run(['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Owner', '--scope', 'serviceBus']);
    expect(granted.code).toBe(0);
    const env = azure.enterHost('gateway');
    // Short retries, as a service that wants to recover in seconds configures them.
    client = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! }), {
      retryOptions: { maxRetries: 2, retryDelayInMs: 200, maxRetryDelayInMs: 1000, timeoutInMs: 3000 },
    });
  }, 30_000);

  afterAll(async () => {
    await receiver?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await azure.stop();
  }, 30_000);

  it('loses no acknowledged message and resumes receiving by itself', async () => {
    const acknowledged = new Set<string>();
    const received = new Map<string, number>();
    const receivedAfterRestart = new Set<string>();
    let restarted = false;
    receiver = client.createReceiver('plain');
    receiver.subscribe(
      {
        processMessage: async (message) => {
          const id = String(message.messageId);
          received.set(id, (received.get(id) ?? 0) + 1);
          if (restarted) receivedAfterRestart.add(id);
        },
        processError: async () => undefined,
      },
      { maxConcurrentCalls: 4 },
    );

    const sender = client.createSender('plain');
    let failedSends = 0;
    let sending = true;
    // One message at a time, retried until the SDK acknowledges it, as a service would.
    const produce = (async () => {
      for (let i = 0; sending; i++) {
        const messageId = `m-${i}`;
        for (;;) {
          try {
            await sender.sendMessages({ body: { i }, messageId });
            acknowledged.add(messageId);
            break;
          } catch {
            failedSends++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      }
    })();

    await waitFor('messages to flow', () => received.size >= 50, 20_000);
    await azure.kill('SIGKILL');
    await waitFor('a send to fail while the local Azure is down', () => failedSends > 0, 20_000);
    await azure.start();
    restarted = true;
    await waitFor('the receiver to get messages sent after the restart', () => receivedAfterRestart.size >= 50, 30_000);
    sending = false;
    await produce;

    await waitFor('every acknowledged message to arrive', () => [...acknowledged].every((id) => received.has(id)), 30_000);
    expect([...acknowledged].filter((id) => !received.has(id))).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(100);
  }, 120_000);
});
