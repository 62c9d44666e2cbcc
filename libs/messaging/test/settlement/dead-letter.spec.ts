import { randomUUID } from 'node:crypto';
import { Controller } from '@nestjs/common';
import type { ServiceBusClient, ServiceBusMessage, ServiceBusReceivedMessage } from '@azure/service-bus';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { DeadLetterError, OnEvent, OnRequest } from '../../src/index.js';
import { startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { TestMetrics } from '@keyless/local-azure/testing';
import { entityCounts, readDeadLetters, startTestBus, type TestBus } from '../support/test-bus.js';

const upserts: string[] = [];

@Controller()
class Handlers {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): ReplyOf<'recommendation.get-product'> {
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  upserted({ product }: EventOf<'catalog.product.upserted'>): void {
    if (product.id.startsWith('poison')) throw new DeadLetterError('UnknownCategory', `category "${product.category}" of ${product.id} is not in the taxonomy`);
    upserts.push(product.id);
  }
}

const recommendationDlq: [string, string] = [topics.events, subscriptions.recommendation];

// Bad input never crashes the service and is never dropped: it lands on a dead-letter queue with a reason
// an operator can act on (read here with the SDK, as an operator tool would).
describe('Dead-lettering by the settlement policy on the local Service Bus (host "recommendation")', () => {
  let bus: TestBus;
  let service: TestService;
  let raw: ServiceBusClient;
  const logger = new RecordingLogger();
  const metrics = new TestMetrics();

  beforeAll(async () => {
    bus = await startTestBus({ host: 'recommendation' });
    service = await startService({
      client: bus.client(),
      controllers: [Handlers],
      server: {
        requests: { queue: queues.recommendationRequests },
        events: [{ topic: topics.events, subscription: subscriptions.recommendation }],
        meterProvider: metrics.provider,
      },
      logger,
    });
    raw = bus.client();
  });
  afterAll(async () => {
    await service?.app.close();
    await bus?.stop();
  });

  async function send(entity: string, message: ServiceBusMessage): Promise<void> {
    const sender = raw.createSender(entity);
    await sender.sendMessages(message);
    await sender.close();
  }

  /** A reply to `requestId`, read from a session of the replies queue as a requester would. */
  async function replyTo(sessionId: string): Promise<ServiceBusReceivedMessage> {
    const receiver = await raw.acceptSession(queues.replies, sessionId, { receiveMode: 'receiveAndDelete' });
    try {
      const [reply] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 10_000 });
      if (!reply) throw new Error(`no reply on session ${sessionId}`);
      return reply;
    } finally {
      await receiver.close();
    }
  }

  describe('when an event fails its schema', () => {
    it('dead-letters it at once with reason SchemaValidationFailed and a description naming the fields', async () => {
      const messageId = randomUUID();
      await send(topics.events, { messageId, subject: 'catalog.product.upserted', contentType: 'application/json', body: { product: { id: 'p-1', price: -3 }, upsertedAt: 'yesterday' } });
      const [dead] = await readDeadLetters(raw, recommendationDlq, 1);
      expect(dead).toMatchObject({ messageId, deadLetterReason: 'SchemaValidationFailed', deliveryCount: 0 });
      expect(dead!.deadLetterErrorDescription).toEqual(expect.stringContaining('payload of "catalog.product.upserted" is invalid'));
      for (const field of ['product.name', 'product.category', 'product.price', 'upsertedAt']) expect(dead!.deadLetterErrorDescription).toContain(`${field}:`);
      expect(dead!.body).toEqual({ product: { id: 'p-1', price: -3 }, upsertedAt: 'yesterday' });
    });
  });

  describe('when a request fails its schema', () => {
    it('answers the caller with invalid-request and dead-letters the request with the fields', async () => {
      const messageId = randomUUID();
      const session = `raw-${messageId}`;
      await send(queues.recommendationRequests, { messageId, subject: 'recommendation.get-product', replyTo: queues.replies, replyToSessionId: session, body: { id: 'a b' } });
      const reply = await replyTo(session);
      expect(reply.correlationId).toBe(messageId);
      expect(reply.body).toEqual({ ok: false, error: { code: 'invalid-request', message: expect.stringContaining('id:') } });
      const [dead] = await readDeadLetters(raw, queues.recommendationRequests, 1);
      expect(dead).toMatchObject({ messageId, deadLetterReason: 'SchemaValidationFailed', deadLetterErrorDescription: expect.stringMatching(/^payload of "recommendation.get-product" is invalid: id: /) });
    });
  });

  it.each([
    ['bytes that are not JSON', Buffer.from([0xff, 0x00, 0x7b, 0x22]), /\(4 bytes that are not JSON\)$/],
    ['a JSON string', 'just text', /is not a JSON object \(string\)/],
  ])('dead-letters an event whose body is %s with reason UndecodableBody', async (_what, body, description) => {
    const messageId = randomUUID();
    await send(topics.events, { messageId, subject: 'catalog.product.upserted', body });
    const [dead] = await readDeadLetters(raw, recommendationDlq, 1);
    expect(dead).toMatchObject({ messageId, deadLetterReason: 'UndecodableBody', deadLetterErrorDescription: expect.stringMatching(description) });
  });

  it('dead-letters an event whose subject has no handler on this service with reason NoHandler', async () => {
    const messageId = randomUUID();
    // The recommendation subscription selects vision.image.analyzed, but this service registered no handler for it.
    await send(topics.events, { messageId, subject: 'vision.image.analyzed', body: { productId: 'p-1' } });
    const [dead] = await readDeadLetters(raw, recommendationDlq, 1);
    expect(dead).toMatchObject({ messageId, deadLetterReason: 'NoHandler', deadLetterErrorDescription: 'no handler for subject "vision.image.analyzed" on this service' });
  });

  it('answers and dead-letters a request whose pattern has no handler with reason NoHandler', async () => {
    const messageId = randomUUID();
    const session = `raw-${messageId}`;
    await send(queues.recommendationRequests, { messageId, subject: 'recommendation.recommend', replyTo: queues.replies, replyToSessionId: session, body: { query: 'red shoes' } });
    // Not invalid-request: the request is valid by the contract; the service is behind it (a gateway would answer 400).
    expect((await replyTo(session)).body).toEqual({ ok: false, error: { code: 'internal', reason: 'NoHandler', message: 'no handler for subject "recommendation.recommend" on this service' } });
    const [dead] = await readDeadLetters(raw, queues.recommendationRequests, 1);
    expect(dead).toMatchObject({ messageId, deadLetterReason: 'NoHandler' });
  });

  it('dead-letters a request without replyTo with reason MissingReplyTo, without running the handler', async () => {
    const messageId = randomUUID();
    await send(queues.recommendationRequests, { messageId, subject: 'recommendation.get-product', body: { id: 'p-1' } });
    const [dead] = await readDeadLetters(raw, queues.recommendationRequests, 1);
    expect(dead).toMatchObject({ messageId, deadLetterReason: 'MissingReplyTo', deadLetterErrorDescription: expect.stringContaining('nobody to answer') });
  });

  it('dead-letters a request whose replyTo names another queue with reason ReplyToNotAllowed, sending nothing there', async () => {
    const messageId = randomUUID();
    // A request trying to make the service write into another service's request queue.
    await send(queues.recommendationRequests, { messageId, subject: 'recommendation.get-product', replyTo: queues.visionRequests, replyToSessionId: 's-1', body: { id: 'p-1' } });
    const [dead] = await readDeadLetters(raw, queues.recommendationRequests, 1);
    expect(dead).toMatchObject({
      messageId,
      deadLetterReason: 'ReplyToNotAllowed',
      deadLetterErrorDescription: `request "recommendation.get-product" asks for its reply on "${queues.visionRequests}", which is not a reply queue of this service (${queues.replies}); nothing was sent there`,
    });
    expect((await entityCounts(bus, queues.visionRequests)).active).toBe(0);
  });

  it('dead-letters at once, with the handler\'s reason, when the handler throws DeadLetterError', async () => {
    const messageId = randomUUID();
    await send(topics.events, {
      messageId,
      subject: 'catalog.product.upserted',
      body: { product: { ...testProduct('poison-1'), category: 'unobtainium' }, upsertedAt: new Date().toISOString() },
    });
    const [dead] = await readDeadLetters(raw, recommendationDlq, 1);
    expect(dead).toMatchObject({ messageId, deliveryCount: 0, deadLetterReason: 'UnknownCategory', deadLetterErrorDescription: 'category "unobtainium" of poison-1 is not in the taxonomy' });
  });

  it('keeps serving afterwards, with nothing left on the entities and each dead-letter logged with where it happened', async () => {
    const messageId = randomUUID();
    await send(topics.events, { messageId, subject: 'catalog.product.upserted', body: { product: testProduct('fine-1'), upsertedAt: new Date().toISOString() } });
    await waitFor('the valid event to be handled', () => upserts.includes('fine-1'));
    await waitFor('both entities to be empty', async () => {
      const [requests, events] = await Promise.all([entityCounts(bus, queues.recommendationRequests), entityCounts(bus, `${topics.events}/Subscriptions/${subscriptions.recommendation}`)]);
      return requests.active + events.active === 0;
    });
    expect(service.server.health().map((r) => r.state)).toEqual(['receiving', 'receiving']);
    expect(await metrics.sum('messaging.messages.dead_lettered', { reason: 'SchemaValidationFailed' })).toBe(2);
    expect(await metrics.sum('messaging.messages.dead_lettered', { reason: 'UndecodableBody', kind: 'event' })).toBe(2);
    expect(await metrics.sum('messaging.messages.dead_lettered')).toBe(9);
    expect(await metrics.sum('messaging.messages.handled', { pattern: 'catalog.product.upserted', kind: 'event' })).toBe(1);
    const deadLetterLines = logger.messages('error').filter((line) => line.startsWith('dead-lettering'));
    expect(deadLetterLines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^dead-lettering event \S+ \(catalog\.product\.upserted\) from events\/Subscriptions\/recommendation: SchemaValidationFailed: /),
        expect.stringMatching(/^dead-lettering request \S+ \(recommendation\.get-product\) from recommendation-requests: MissingReplyTo: /),
        expect.stringMatching(/^dead-lettering request \S+ \(recommendation\.get-product\) from recommendation-requests: ReplyToNotAllowed: /),
      ]),
    );
  });
});
