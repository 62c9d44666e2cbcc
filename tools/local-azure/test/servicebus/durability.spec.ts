import { ServiceBusClient } from '@azure/service-bus';
import { receiveExactly, rejectionOf, startServiceBusProcess, type ServiceBusProcess } from './support.js';

// The broker runs in a child process (the CLI from source) so the test can SIGKILL it mid-send.
describe('Service Bus durability', () => {
  let bus: ServiceBusProcess;
  let child: ServiceBusProcess['child'];
  let client: ServiceBusClient;
  /** For the set-up send and the lock holder: only sends in flight at the kill need the short timeout. */
  let setupClient: ServiceBusClient;

  beforeAll(async () => {
    bus = await startServiceBusProcess('durability');
    child = bus.child;
    // Sends in flight when the broker dies end with the SDK's operation timeout: keep it short.
    client = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential, {
      retryOptions: { maxRetries: 0, retryDelayInMs: 100, timeoutInMs: 2000 },
    });
    // A first connection, token and link took more than 2 s under two busy loops on a loaded machine.
    setupClient = new ServiceBusClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential, { retryOptions: { maxRetries: 0, timeoutInMs: 20_000 } });
    // Starting the CLI and assigning the role took over 30 s under two busy loops on a loaded machine.
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await setupClient?.close();
    await bus?.stop();
  });

  it('delivers every send the SDK acknowledged across a SIGKILL and restart, and releases locks on restart', async () => {
    // No message id: the one the broker assigns must survive the restart too.
    await setupClient.createSender('orders').sendMessages({ body: 'locked when the broker dies' });
    const lockHolder = setupClient.createReceiver('orders', { maxAutoLockRenewalDurationInMs: 0 });
    const [locked] = await receiveExactly(lockHolder, 1, 20_000);

    const total = 400;
    const producers = 4;
    const killAfter = 120;
    const acknowledged = new Set<string>();
    let restart: Promise<void> | undefined;
    let failedAttempts = 0;
    const deadline = Date.now() + 40_000;
    // Each producer sends its share one message at a time and retries what fails, like a service would.
    await Promise.all(
      Array.from({ length: producers }, async (_, producer) => {
        const sender = client.createSender('plain');
        for (let i = producer; i < total; i += producers) {
          const id = `m-${i}`;
          for (;;) {
            if (Date.now() > deadline) throw new Error(`${acknowledged.size} of ${total} sends acknowledged before the deadline`);
            try {
              await sender.sendMessages({ body: i, messageId: id });
              acknowledged.add(id);
              break;
            } catch {
              failedAttempts++;
              await new Promise((resolve) => setTimeout(resolve, 20)); // the producer's own back-off
            }
          }
          // Kill while the other producers have sends in flight, then start again on the same ports and home.
          if (acknowledged.size >= killAfter && !restart) restart = child.kill('SIGKILL').then(() => child.start());
        }
      }),
    );
    await restart;
    expect(failedAttempts).toBeGreaterThan(0);
    expect(acknowledged.size).toBe(total);

    const receiver = client.createReceiver('plain', { receiveMode: 'receiveAndDelete' });
    const received = new Map<string, number[]>();
    const receiveDeadline = Date.now() + 15_000;
    while ([...acknowledged].some((id) => !received.has(id)) && Date.now() < receiveDeadline) {
      for (const message of await receiver.receiveMessages(100, { maxWaitTimeInMs: 1000 })) {
        received.set(String(message.messageId), [...(received.get(String(message.messageId)) ?? []), message.sequenceNumber!.toNumber()]);
      }
    }
    const lost = [...acknowledged].filter((id) => !received.has(id));
    expect(lost).toEqual([]);
    // Sequence numbers continue after the restart: none is handed out twice.
    const sequenceNumbers = [...received.values()].flat();
    expect(new Set(sequenceNumbers).size).toBe(sequenceNumbers.length);

    // The lock held when the broker died is gone: the message is back at once (its lock would last 5 s).
    const [again] = await receiveExactly(client.createReceiver('orders'), 1, 3000);
    expect(again).toMatchObject({ body: 'locked when the broker dies', messageId: locked!.messageId });
    expect(locked!.messageId).toEqual(expect.stringMatching(/^[0-9a-f]{32}$/));
    expect(again!.lockToken).not.toBe(locked!.lockToken);
    // A renewal of the lock the broker lost is answered MessageLockLost (410 with its error-condition on $management),
    // not retryable: the SDK's auto-renewal stops for that message after one report instead of trying again.
    const renewal = await rejectionOf(lockHolder.renewMessageLock(locked!));
    expect(renewal).toMatchObject({ code: 'MessageLockLost', retryable: false });
  }, 60_000);
});
