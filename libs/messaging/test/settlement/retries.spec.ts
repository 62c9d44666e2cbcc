import { randomUUID } from 'node:crypto';
import { Controller, type INestApplication } from '@nestjs/common';
import type { ServiceBusClient } from '@azure/service-bus';
import { subscriptions, topics, type EventOf } from '@keyless/contracts';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { OnEvent, ServiceBusContext, ServiceBusRecordBuilder } from '../../src/index.js';
import { startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { entityCounts, readDeadLetters, startTestBus, type TestBus } from '../support/test-bus.js';

/** Each delivery the handler saw: product id, delivery count, when. */
const deliveries: { id: string; deliveryCount: number; at: number }[] = [];
/** Products whose effect was applied (the handler got past its failure). */
const applied: string[] = [];
/** Failures to throw before succeeding, by product id (`Infinity`: always fail). */
const failuresBeforeSuccess = new Map<string, number>();

@Controller()
class IndexingHandlers {
  @OnEvent('catalog.product.upserted')
  async upserted({ product }: EventOf<'catalog.product.upserted'>, context: ServiceBusContext): Promise<void> {
    const seen = deliveries.filter((d) => d.id === product.id).length;
    deliveries.push({ id: product.id, deliveryCount: context.getDeliveryCount(), at: performance.now() });
    if (seen < (failuresBeforeSuccess.get(product.id) ?? 0)) throw new Error(`embeddings endpoint answered 429 for ${product.id} (attempt ${seen + 1})`);
    applied.push(product.id);
  }
}

const subscriptionPath = `${topics.events}/Subscriptions/${subscriptions.recommendation}`;

describe('Retries of failed event handlers on the local Service Bus (host "recommendation")', () => {
  let bus: TestBus;
  let service: TestService;
  let publisher: INestApplication;
  let raw: ServiceBusClient;
  let publish: (id: string) => Promise<string>;
  const logger = new RecordingLogger();
  const settlement = { maxAttempts: 3, initialBackoffInMs: 200, jitter: 0.2 };

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation' });
    service = await startService({
      client: bus.client(),
      controllers: [IndexingHandlers],
      server: { events: [{ topic: topics.events, subscription: subscriptions.recommendation }], settlement },
      logger,
    });
    // Nest's logger is process-wide: the last app created sets it, so both get the recording one.
    const requester = await startRequester({ client: bus.client(), proxy: {}, logger });
    publisher = requester.app;
    raw = bus.client();
    publish = async (id) => {
      const messageId = randomUUID();
      await requester.messaging.publish('catalog.product.upserted', new ServiceBusRecordBuilder({ product: testProduct(id), upsertedAt: new Date().toISOString() }).setMessageId(messageId).build());
      return messageId;
    };
  });
  afterAll(async () => {
    await service?.app.close();
    await publisher?.close();
    await bus?.stop();
  });

  describe('when the handler keeps failing', () => {
    it('retries with growing backoff, then dead-letters with MaxAttemptsExceeded and the last error', async () => {
      failuresBeforeSuccess.set('always-429', Infinity);
      const messageId = await publish('always-429');
      const [dead] = await readDeadLetters(raw, [topics.events, subscriptions.recommendation], 1);
      expect(dead).toMatchObject({
        messageId,
        deadLetterReason: 'MaxAttemptsExceeded',
        deadLetterErrorDescription: 'failed 3 times; last error: Error: embeddings endpoint answered 429 for always-429 (attempt 3)',
      });
      const attempts = deliveries.filter((d) => d.id === 'always-429');
      expect(attempts.map((d) => d.deliveryCount)).toEqual([0, 1, 2]);
      // Backoff 200 ms then 400 ms, each ±20 %: the message stayed locked meanwhile, then was abandoned.
      const gaps = [attempts[1]!.at - attempts[0]!.at, attempts[2]!.at - attempts[1]!.at];
      expect(gaps[0]).toBeGreaterThanOrEqual(160);
      expect(gaps[1]).toBeGreaterThanOrEqual(320);
      expect(applied).not.toContain('always-429');
      expect(logger.messages('warn')).toEqual(
        expect.arrayContaining([expect.stringMatching(/^handler failed on events\/Subscriptions\/recommendation message \S+ \(catalog\.product\.upserted, delivery 1\): Error: embeddings endpoint answered 429/)]),
      );
    });
  });

  describe('when the handler succeeds on a retry', () => {
    it('applies the effect once and completes the message once', async () => {
      failuresBeforeSuccess.set('flaky-1', 2);
      await publish('flaky-1');
      await waitFor('flaky-1 to be applied', () => applied.includes('flaky-1'));
      await waitFor('the subscription to be empty', async () => (await entityCounts(bus, subscriptionPath)).active === 0);
      expect(deliveries.filter((d) => d.id === 'flaky-1').map((d) => d.deliveryCount)).toEqual([0, 1, 2]);
      // A later event is handled after it: had flaky-1 not been completed, it would have come back by now
      // (it was never left locked, so its redelivery would not wait for a lock to expire).
      await publish('after-flaky');
      await waitFor('after-flaky to be applied', () => applied.includes('after-flaky'));
      expect(applied.filter((id) => id === 'flaky-1')).toHaveLength(1);
      expect(deliveries.filter((d) => d.id === 'flaky-1')).toHaveLength(3);
      expect((await entityCounts(bus, subscriptionPath)).deadLetter).toBe(0);
      expect(logger.messages('warn').filter((line) => line.startsWith('could not settle'))).toEqual([]);
    });
  });
});
