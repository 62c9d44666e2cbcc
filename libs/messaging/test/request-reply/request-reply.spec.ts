import { randomUUID } from 'node:crypto';
import { Controller } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import type { ServiceBusClient } from '@azure/service-bus';
import { findRole, queues, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { RecordingLogger, rejectionOf, waitFor } from '@keyless/testing';
import { InvalidPayloadError, InvalidReplyError, MessagingClient, OnRequest, RequestTimeoutError, ServiceBusContext, ServiceBusRecordBuilder } from '../../src/index.js';
import { ServiceBusClientProxy } from '../../src/internals.js';
import { sendCopies, startRequester, startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';

/** Every request the handler ran, by product id (how many times). */
const handled = new Map<string, number>();
/** Which reply session each request asked its reply to go to. */
const replySessions = new Map<string, string>();

@Controller()
class ProductHandlers {
  @OnRequest('recommendation.get-product')
  async getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>, context: ServiceBusContext): Promise<ReplyOf<'recommendation.get-product'>> {
    handled.set(id, (handled.get(id) ?? 0) + 1);
    replySessions.set(id, String(context.getMessage().replyToSessionId));
    if (id.startsWith('missing')) throw new RpcException({ code: 'not-found', message: `no product ${id}` });
    if (id.startsWith('broken')) throw new TypeError(`cannot read properties of undefined (reading 'price') for ${id}`);
    // A little asynchronous work, so concurrent requests overlap in the handler.
    await new Promise((resolve) => setImmediate(resolve));
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }
}

/** A vision handler whose reply (valid by its contract) is larger than Service Bus takes (256 KiB here). */
@Controller()
class OversizedReplyHandlers {
  @OnRequest('vision.analyze-image')
  analyze(): ReplyOf<'vision.analyze-image'> {
    return { caption: { text: 'a very long caption '.repeat(20_000), confidence: 0.9 }, tags: [], width: 1, height: 1, modelVersion: 'test' };
  }
}

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('Request/reply over the local Service Bus (host "gateway")', () => {
  let bus: TestBus;
  let service: TestService;
  let requester: { messaging: MessagingClient; proxy: ServiceBusClientProxy; close(): Promise<void> };
  const serviceLog = new RecordingLogger();

  beforeAll(async () => {
    bus = await startTestBus();
    service = await startService({
      client: bus.client(),
      controllers: [ProductHandlers],
      server: { requests: { queue: queues.recommendationRequests, maxConcurrentCalls: 16 }, settlement: { initialBackoffInMs: 100 } },
      logger: serviceLog,
    });
    // Nest's logger is process-wide: the last app created decides where every app's lines go.
    const started = await startRequester({ client: bus.client(), proxy: { replyQueue: queues.replies, instanceId: 'gateway-a', requestTimeoutInMs: 10_000 }, logger: serviceLog });
    requester = { ...started, close: () => started.app.close() };
  });
  afterAll(async () => {
    await requester?.close();
    await service?.app.close();
    await bus?.stop();
  });

  it('re-sends the remembered reply when the first send fails, without running the handler again', async () => {
    // The service loses its right to send replies after the handler ran: the request comes back
    // (settlement rule 6) until the role is restored, and the caller still gets the one reply.
    // First in this file: a role deletion refuses new links only, and the service's reply link is
    // opened by its first reply.
    const azure = bus.test.azure;
    const principalId = azure.directory.userAssignedIdentity('id-keyless')!.principalId;
    const repliesScope = `${azure.directory.resourceId('serviceBus')}/queues/${queues.replies}`;
    const removed = azure.roleAssignments.delete({ principalId, role: findRole('Azure Service Bus Data Sender')!, scope: repliesScope });
    expect(removed).toHaveLength(1);
    try {
      const reply = requester.messaging.request('recommendation.get-product', new ServiceBusRecordBuilder({ id: 'unsent-1' }).setTimeToLive(20_000).build());
      await waitFor('two failed reply sends', () => serviceLog.messages('warn').filter((line) => line.startsWith('reply to request') && line.includes('(recommendation.get-product) could not be sent')).length >= 2, 15_000);
      azure.applyAccessFile();
      await expect(reply).resolves.toMatchObject({ product: { id: 'unsent-1' } });
    } finally {
      azure.applyAccessFile();
    }
    expect(handled.get('unsent-1')).toBe(1);
    expect(serviceLog.messages('log')).toEqual(expect.arrayContaining([expect.stringMatching(/^request .+ \(recommendation.get-product\) was already handled: re-sending its reply$/)]));
  }, 30_000);

  it('runs the handler once for copies of one request delivered together, and answers each', async () => {
    const { messageId, replies } = await sendCopies(bus.client(), 'recommendation.get-product', { id: 'twice-1' }, 3);
    expect(replies.map((r) => r.correlationId)).toEqual([messageId, messageId, messageId]);
    expect(replies.map((r) => r.body)).toEqual([replies[0]!.body, replies[0]!.body, replies[0]!.body]);
    expect(replies[0]!.body).toMatchObject({ ok: true, data: { product: { id: 'twice-1' } } });
    expect(handled.get('twice-1')).toBe(1);
  });

  it('answers copies of a request whose handler failed with the same error, running the handler once', async () => {
    const { replies } = await sendCopies(bus.client(), 'recommendation.get-product', { id: 'broken-twice' }, 2);
    expect(replies.map((r) => r.body)).toEqual([
      { ok: false, error: { code: 'internal', message: expect.stringContaining('broken-twice') } },
      replies[0]!.body,
    ]);
    expect(handled.get('broken-twice')).toBe(1);
  });

  it('answers a request with the handler\'s reply, validated against the contract', async () => {
    const reply = await requester.messaging.request('recommendation.get-product', { id: 'shoe-1' });
    expect(reply).toEqual({ product: testProduct('shoe-1'), vision: null, indexing: { state: 'indexed', updatedAt: expect.any(String) } });
    expect(replySessions.get('shoe-1')).toBe('gateway-a');
  });

  it('correlates 100 concurrent requests from two client instances, each reply to its own caller', async () => {
    const second = new ServiceBusClientProxy({ client: bus.client(), replyQueue: queues.replies, instanceId: 'gateway-b', requestTimeoutInMs: 20_000 });
    await second.connect();
    try {
      const other = new MessagingClient(second);
      const ids = Array.from({ length: 100 }, (_, i) => `concurrent-${i}`);
      const replies = await Promise.all(
        ids.map((id, i) => (i % 2 === 0 ? requester.messaging : other).request('recommendation.get-product', { id }).then((reply) => reply.product.id)),
      );
      expect(replies).toEqual(ids);
      ids.forEach((id, i) => expect(replySessions.get(id)).toBe(i % 2 === 0 ? 'gateway-a' : 'gateway-b'));
      expect(ids.map((id) => handled.get(id))).toEqual(ids.map(() => 1));
      expect(second.health()).toMatchObject({ sessionId: 'gateway-b', state: 'attached', pendingRequests: 0 });
    } finally {
      await second.close();
    }
  });

  describe('when the remote handler fails', () => {
    it('rejects with an RpcException carrying the handler\'s stable code', async () => {
      const error = await rejectionOf(requester.messaging.request('recommendation.get-product', { id: 'missing-1' }));
      expect(error).toBeInstanceOf(RpcException);
      expect((error as RpcException).getError()).toEqual({ code: 'not-found', message: 'no product missing-1' });
    });

    it('maps an unexpected error to the code "internal" with its message, and runs the handler once', async () => {
      const error = await rejectionOf(requester.messaging.request('recommendation.get-product', { id: 'broken-1' }));
      expect(error).toBeInstanceOf(RpcException);
      expect((error as RpcException).getError()).toEqual({ code: 'internal', message: "cannot read properties of undefined (reading 'price') for broken-1" });
      expect(handled.get('broken-1')).toBe(1);
    });
  });

  it('tells the caller at once, with an internal error, when the reply is too large to send', async () => {
    const vision = await startService({ client: bus.client(), controllers: [OversizedReplyHandlers], server: { requests: { queue: queues.visionRequests } }, logger: serviceLog });
    try {
      const started = Date.now();
      const error = await rejectionOf(requester.messaging.request('vision.analyze-image', { url: 'https://images.example/shoe.png' }));
      expect(error).toBeInstanceOf(RpcException);
      expect((error as RpcException).getError()).toEqual({ code: 'internal', message: expect.stringMatching(/^the reply to "vision\.analyze-image" could not be sent: ServiceBusError: The received message \(size: \d+ bytes\) exceeds the limit/) });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await vision.app.close();
    }
  });

  it('refuses an invalid payload before sending anything, naming the field', async () => {
    const error = await rejectionOf(requester.messaging.request('recommendation.get-product', { id: 'not a valid id!' }));
    expect(error).toBeInstanceOf(InvalidPayloadError);
    expect((error as InvalidPayloadError).issues).toEqual([{ path: 'id', message: expect.stringContaining('letters, digits') }]);
    expect(handled.has('not a valid id!')).toBe(false);
  });

  describe('when a reply breaks its contract', () => {
    /** A request nobody handles (no vision service runs here), answered by `forge` as a rogue replier would. */
    async function answeredWith(body: unknown): Promise<Error> {
      const messageId = randomUUID();
      const pending = rejectionOf(requester.messaging.request('vision.analyze-image', new ServiceBusRecordBuilder({ url: 'https://images.example/a.png' }).setMessageId(messageId).setTimeToLive(5_000).build()));
      const forger = bus.client().createSender(queues.replies);
      await forger.sendMessages({ sessionId: requester.proxy.instanceId, correlationId: messageId, subject: 'vision.analyze-image', body, contentType: 'application/json' });
      await forger.close();
      return (await pending) as Error;
    }

    it.each([
      ['data that fails the reply schema', { ok: true, data: { caption: 'not an object', tags: [], width: -1 } }, /^data\./],
      ['an error with an unknown code', { ok: false, error: { code: 'teapot', message: 'short and stout' } }, /^error\.code$/],
      ['something that is no envelope', 'hello', /^$/],
    ])('rejects with InvalidReplyError for %s, and logs it', async (_case, body, path) => {
      const error = await answeredWith(body);
      expect(error).toBeInstanceOf(InvalidReplyError);
      expect(error).toMatchObject({ code: 'InvalidReply', pattern: 'vision.analyze-image', issues: expect.arrayContaining([expect.objectContaining({ path: expect.stringMatching(path) })]) });
      expect(serviceLog.messages('error')).toEqual(expect.arrayContaining([expect.stringContaining(`${error.message} (reply `)]));
    });
  });

  describe('when no handler is running', () => {
    let client: ServiceBusClient;

    beforeAll(async () => {
      client = bus.client();
      await service.app.close();
    });

    it('fails with RequestTimeoutError, and the expired request is not processed later', async () => {
      const id = `late-${randomUUID().slice(0, 8)}`;
      // The record's time to live is the request's timeout (and the message's TTL).
      const request = new ServiceBusRecordBuilder({ id }).setTimeToLive(1_000).build();
      const error = await rejectionOf(requester.messaging.request('recommendation.get-product', request));
      expect(error).toBeInstanceOf(RequestTimeoutError);
      expect(error).toMatchObject({ code: 'RequestTimeout', pattern: 'recommendation.get-product', queue: queues.recommendationRequests, timeoutInMs: 1_000 });

      // A service that starts now gets the queue in order: once a fresh request is answered, the expired
      // one ahead of it would have reached the handler first, had it not expired.
      service = await startService({ client, controllers: [ProductHandlers], server: { requests: { queue: queues.recommendationRequests, maxConcurrentCalls: 1 } } });
      await expect(requester.messaging.request('recommendation.get-product', { id: 'after-restart' })).resolves.toMatchObject({ product: { id: 'after-restart' } });
      expect(handled.has(id)).toBe(false);
    });
  });
});
