import { ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { queues } from '@keyless/contracts';
import { LocalAzureProcess } from '@keyless/local-azure/testing';
import { launchBrowser, screenshot, seriousAxeViolations, type TestBrowser } from './browser.js';

// Purging a queue from the portal in Chromium, as an operator does it: the local Azure alone (`npm run local-azure --
// start`, no service consumes the queue), messages sent and dead-lettered with the real SDK as the gateway's host
// identity, sign-in with the one-time link the CLI prints, then Purge → the confirmation → Yes, for the messages and
// then for the dead-letter queue.
describe('Purging a queue in the local portal, in a real browser', () => {
  const queue = queues.recommendationRequests;
  let azure: LocalAzureProcess;
  let namespace: string;
  let credential: ManagedIdentityCredential;
  let client: ServiceBusClient;
  let browser: TestBrowser;
  let page: Page;
  let portalUrl: string;

  beforeAll(async () => {
    // In a new temporary home, deleted by stop().
    azure = new LocalAzureProcess();
    await azure.start(180_000);
    portalUrl = azure.hostEnv('operator').LOCAL_AZURE_PORTAL_URL!;
    // The gateway's host runs as id-keyless, which infra/access.json lets send to and receive from the queue.
    const env = azure.enterHost('gateway');
    namespace = env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!;
    credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    client = new ServiceBusClient(namespace, credential);
    browser = await launchBrowser(join(azure.home, 'tls/server.pem'));
    page = await browser.context.newPage();
  }, 240_000);

  afterAll(async () => {
    await client?.close();
    await browser?.close();
    await azure?.stop();
  }, 60_000);

  const visit = async (path: string): Promise<number> => (await page.goto(new URL(path, portalUrl).href))!.status();
  /**
   * What the SDK peeks in the queue or its dead-letter queue: the message ids. Each peek on a connection of its own: the
   * SDK's management link of an entity goes on from the last sequence number it peeked, so a second peek on one
   * connection would not see the messages the first one saw.
   */
  const peek = async (subQueueType?: 'deadLetter'): Promise<string[]> => {
    const peeker = new ServiceBusClient(namespace, credential);
    try {
      const messages = await peeker.createReceiver(queue, subQueueType ? { subQueueType } : {}).peekMessages(100);
      return messages.map((m) => String(m.messageId)).sort();
    } finally {
      await peeker.close();
    }
  };

  it('purges the messages, then the dead-letter queue, each after its confirmation, and shows how many went', async () => {
    const sender = client.createSender(queue);
    await sender.sendMessages(['broken-1', 'broken-2'].map((messageId) => ({ messageId, body: { messageId } })));
    const receiver = client.createReceiver(queue);
    const deadLettered: string[] = [];
    for (const deadline = Date.now() + 30_000; deadLettered.length < 2; ) {
      if (Date.now() > deadline) throw new Error(`received ${deadLettered.length} of the 2 messages to dead-letter within 30 s`);
      for (const message of await receiver.receiveMessages(2 - deadLettered.length, { maxWaitTimeInMs: 5000 })) {
        await receiver.deadLetterMessage(message, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
        deadLettered.push(String(message.messageId));
      }
    }
    await receiver.close();
    await sender.sendMessages(['order-1', 'order-2', 'order-3'].map((messageId) => ({ messageId, body: { messageId } })));
    await sender.close();
    expect([await peek(), await peek('deadLetter')]).toEqual([['order-1', 'order-2', 'order-3'], ['broken-1', 'broken-2']]);

    expect(await visit(await azure.run(['portal']).then((result) => result.stdout.trim()))).toBe(200);
    await page.getByText(/^Signed in as /).waitFor();
    expect(await visit('/servicebus')).toBe(200);
    await page.getByRole('link', { name: `Peek messages of ${queue}` }).click();
    // Each check after a click waits for what only the next page has: the click does not wait for the navigation.
    const messages = page.getByRole('table', { name: /^3 messages \(peeked/ });
    await messages.waitFor();
    await expect(messages.getByRole('row').count()).resolves.toBe(4);
    await expect(page.getByRole('link', { name: 'Dead letters (2)' }).count()).resolves.toBe(1);
    expect(await seriousAxeViolations(page)).toEqual([]);
    await screenshot(page, 'purge-01-messages');

    // Purge asks first; "No, go back" changes nothing.
    await page.getByRole('button', { name: `Purge all 3 messages of ${queue}` }).click();
    await page.getByRole('heading', { level: 1, name: 'Purge messages' }).waitFor();
    await expect(page.locator('#purge-count').textContent()).resolves.toBe('3 messages');
    expect(await seriousAxeViolations(page)).toEqual([]);
    await screenshot(page, 'purge-02-confirm');
    await page.getByRole('link', { name: 'No, go back' }).click();
    await page.getByRole('table', { name: /^3 messages \(peeked/ }).waitFor();
    await page.getByRole('button', { name: `Purge all 3 messages of ${queue}` }).click();
    await page.getByRole('button', { name: 'Yes, purge' }).click();
    await page.getByRole('status').filter({ hasText: `Purged 3 messages of ${queue}.` }).waitFor();
    await expect(page.locator('#messages-empty').textContent()).resolves.toContain(`${queue} holds no message`);
    await expect(page.getByRole('table').count()).resolves.toBe(0);
    await screenshot(page, 'purge-03-purged');
    // The dead-letter queue was not touched.
    expect([await peek(), await peek('deadLetter')]).toEqual([[], ['broken-1', 'broken-2']]);

    await page.getByRole('link', { name: 'Dead letters (2)' }).click();
    await page.getByRole('button', { name: `Purge all 2 dead-lettered messages of ${queue}` }).click();
    await page.getByRole('heading', { level: 1, name: 'Purge dead-lettered messages' }).waitFor();
    await expect(page.locator('#purge-count').textContent()).resolves.toBe('2 dead-lettered messages');
    await page.getByRole('button', { name: 'Yes, purge' }).click();
    await page.getByRole('status').filter({ hasText: `Purged 2 messages from the dead-letter queue of ${queue}.` }).waitFor();
    await expect(page.locator('#dead-letters-empty').textContent()).resolves.toContain(`The dead-letter queue of ${queue} is empty`);
    expect(await seriousAxeViolations(page)).toEqual([]);
    await screenshot(page, 'purge-04-dead-letters-purged');
    expect([await peek(), await peek('deadLetter')]).toEqual([[], []]);
    expect(browser.cspViolations).toEqual([]);
  }, 120_000);
});
