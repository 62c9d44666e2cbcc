// Recovery of clients after the local Azure is killed (SIGKILL) and started again on the same home: the
// same Service Bus sender, streaming receiver and Azure OpenAI client, created once, keep being used across
// every kill. Per kill it measures the time the local Azure takes to be running again (kill → `status`
// says running) and, from that moment, until each client works again: a send started after the restart
// acknowledged, a message sent after the restart received, a chat completion answered. It also reports how
// long a send that was in flight at the kill took to be acknowledged (the SDK fails it only by its
// operation timeout, then retries), and counts acknowledged sends that never arrived (must be 0). The
// Service Bus client uses the services' retry options (@keyless/auth clientDefaults).
//
//   npx nx run-many -t build -p local-azure auth && npx node bench/local-azure-restart.bench.ts [--kills N]
//
// Prints one JSON object: p50 and max in ms per measure over the kills.
import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { AzureOpenAI } from 'openai';
import { clientDefaults } from '@keyless/auth/diagnostics';
import { LocalAzureProcess } from '@keyless/local-azure/testing';

const killsArgument = process.argv.indexOf('--kills');
const kills = killsArgument > 0 ? Number(process.argv[killsArgument + 1]) : 10;
/** Time the clients run normally between kills. */
const steadyInMs = 1_000;
const recoveryDeadlineInMs = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, timeoutInMs = recoveryDeadlineInMs): Promise<void> {
  const deadline = performance.now() + timeoutInMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutInMs} ms`);
    await sleep(2);
  }
}

function summary(values: readonly number[]): { p50: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!), max: Math.round(sorted.at(-1)!) };
}

const azure = new LocalAzureProcess();
await azure.start();
try {
  const granted = await azure.run(['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Azure Service Bus Data Owner', '--scope', 'serviceBus']);
  if (granted.code !== 0) throw new Error(granted.stderr);
  const env = azure.enterHost('gateway');
  const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
  const bus = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, { retryOptions: { ...clientDefaults.serviceBusRetryOptions } });
  const openAi = new AzureOpenAI({
    endpoint: env.AZURE_OPENAI_ENDPOINT!,
    apiVersion: env.OPENAI_API_VERSION!,
    azureADTokenProvider: getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default'),
    maxRetries: 0,
    timeout: 5_000,
  });
  const queue = 'vision-requests';

  // Sends start every few ms (not one after another, so one send stuck in flight at the kill does not hide
  // when the client works again), each retried until acknowledged, as a service's publisher does.
  const sends: { startedAt: number; ackedAt?: number }[] = [];
  const acknowledged = new Set<string>();
  const received = new Set<string>();
  let firstReceiveOfLateSendAt = 0;
  let lateSendsFrom = Number.POSITIVE_INFINITY;
  let sending = true;
  let inFlight = 0;
  const sender = bus.createSender(queue);
  const send = async (messageId: string): Promise<void> => {
    const record: { startedAt: number; ackedAt?: number } = { startedAt: performance.now() };
    sends.push(record);
    inFlight++;
    for (;;) {
      try {
        await sender.sendMessages({ messageId, body: { sentAt: performance.now() }, subject: 'bench' });
        record.ackedAt = performance.now();
        acknowledged.add(messageId);
        break;
      } catch {
        await sleep(20);
      }
    }
    inFlight--;
  };
  const pendingSends: Promise<void>[] = [];
  const producer = (async () => {
    for (let i = 0; sending; i++) {
      if (inFlight < 100) pendingSends.push(send(`restart-bench-${i}`));
      await sleep(10);
    }
  })();
  const receiver = bus.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
  receiver.subscribe(
    {
      processMessage: async (message) => {
        received.add(String(message.messageId));
        if (!firstReceiveOfLateSendAt && (message.body as { sentAt: number }).sentAt >= lateSendsFrom) firstReceiveOfLateSendAt = performance.now();
      },
      processError: async () => undefined,
    },
    { maxConcurrentCalls: 8 },
  );
  const chatAnswers = async (): Promise<boolean> => {
    try {
      await openAi.chat.completions.create({ model: env.AZURE_OPENAI_CHAT_DEPLOYMENT!, messages: [{ role: 'user', content: 'Reply with OK' }] });
      return true;
    } catch {
      return false;
    }
  };

  const restart: number[] = [];
  const senderRecovered: number[] = [];
  const receiverRecovered: number[] = [];
  const openAiRecovered: number[] = [];
  const inFlightAtKill: number[] = [];
  await until('the first message to arrive', () => received.size > 0);
  for (let k = 0; k < kills; k++) {
    await sleep(steadyInMs);
    const killedAt = performance.now();
    await azure.kill('SIGKILL');
    await azure.start();
    const readyAt = performance.now();
    restart.push(readyAt - killedAt);
    lateSendsFrom = readyAt;
    firstReceiveOfLateSendAt = 0;
    const firstLateAck = (): number | undefined => {
      const acked = sends.filter((s) => s.startedAt >= readyAt && s.ackedAt !== undefined).map((s) => s.ackedAt!);
      return acked.length ? Math.min(...acked) : undefined;
    };
    await Promise.all([
      until('a send started after the restart to be acknowledged', () => firstLateAck() !== undefined).then(() => senderRecovered.push(firstLateAck()! - readyAt)),
      until('a message sent after the restart to arrive', () => firstReceiveOfLateSendAt > 0).then(() => receiverRecovered.push(firstReceiveOfLateSendAt - readyAt)),
      (async () => {
        while (!(await chatAnswers())) {
          if (performance.now() - readyAt > recoveryDeadlineInMs) throw new Error('Azure OpenAI did not answer after the restart');
          await sleep(2);
        }
        openAiRecovered.push(performance.now() - readyAt);
      })(),
    ]);
    // Sends that were in flight when the process died: the SDK fails them only by its operation timeout.
    await until('the sends in flight at the kill to be acknowledged', () => sends.every((s) => s.startedAt > killedAt || s.ackedAt !== undefined));
    const stuck = sends.filter((s) => s.startedAt <= killedAt && s.ackedAt! > killedAt).map((s) => s.ackedAt! - killedAt);
    if (stuck.length) inFlightAtKill.push(Math.max(...stuck));
    lateSendsFrom = Number.POSITIVE_INFINITY;
  }
  sending = false;
  await producer;
  await Promise.all(pendingSends);
  await until('every acknowledged message to arrive', () => [...acknowledged].every((id) => received.has(id)), 30_000).catch(() => undefined);
  const lost = [...acknowledged].filter((id) => !received.has(id)).length;
  await receiver.close();
  await bus.close();
  console.log(
    JSON.stringify({
      benchmark: 'local-azure-restart',
      kills,
      restartInMs: summary(restart),
      serviceBusSenderRecoveredInMs: summary(senderRecovered),
      serviceBusReceiverRecoveredInMs: summary(receiverRecovered),
      openAiRecoveredInMs: summary(openAiRecovered),
      sendInFlightAtKillAcknowledgedInMs: inFlightAtKill.length ? summary(inFlightAtKill) : null,
      acknowledged: acknowledged.size,
      acknowledgedButLost: lost,
    }),
  );
} finally {
  await azure.stop();
}
