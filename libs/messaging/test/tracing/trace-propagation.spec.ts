import { Controller } from '@nestjs/common';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { queues, subscriptions, topics, type EventOf, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { OnEvent, OnRequest, ServiceBusContext } from '../../src/index.js';
import { outcomeAttribute } from '../../src/server/service-bus.server.js';
import { startService, testProduct, type TestService } from '../support/messaging-apps.js';
import { startTestBus, type TestBus } from '../support/test-bus.js';
import { waitFor } from '../support/wait-for.js';

/** What each handler saw: the active span's trace and span ids, and the message's traceparent property. */
const seen = new Map<string, { traceId: string | undefined; spanId: string | undefined; traceparent: unknown }>();

function note(key: string, messageContext: ServiceBusContext): void {
  const span = trace.getActiveSpan()?.spanContext();
  seen.set(key, { traceId: span?.traceId, spanId: span?.spanId, traceparent: messageContext.getMessage().applicationProperties?.traceparent });
}

@Controller()
class TracedHandlers {
  @OnRequest('recommendation.get-product')
  async getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>, messageContext: ServiceBusContext): Promise<ReplyOf<'recommendation.get-product'>> {
    await Promise.resolve();
    note(`request:${id}`, messageContext);
    return { product: testProduct(id), vision: null, indexing: { state: 'indexed', updatedAt: new Date().toISOString() } };
  }

  @OnEvent('catalog.product.upserted')
  async upserted({ product }: EventOf<'catalog.product.upserted'>, messageContext: ServiceBusContext): Promise<void> {
    await Promise.resolve();
    note(`event:${product.id}`, messageContext);
  }
}

// An app registers the OpenTelemetry SDK (tracer provider, W3C propagator, async context); the transport
// uses only the OpenTelemetry API, so the trace continues across the hop in and out of Service Bus.
describe('W3C trace context across Service Bus (host "gateway")', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('test');
  let bus: TestBus;
  let service: TestService;

  beforeAll(async () => {
    // Registers the provider with an AsyncLocalStorage context manager and the W3C propagator.
    provider.register();
    bus = await startTestBus();
    service = await startService({
      client: bus.client(),
      controllers: [TracedHandlers],
      server: { requests: { queue: queues.recommendationRequests }, events: [{ topic: topics.events, subscription: subscriptions.recommendation }] },
      proxy: { replyQueue: queues.replies, instanceId: 'traced-gateway' },
    });
  });
  afterAll(async () => {
    await service?.app.close();
    await bus?.stop();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  const spans = () => exporter.getFinishedSpans();
  const spanNamed = (name: string, traceId: string) => spans().find((s) => s.name === name && s.spanContext().traceId === traceId);

  it('continues the caller\'s trace in the request handler and back in the reply', async () => {
    const root = tracer.startSpan('GET /products/traced-1');
    const traceId = root.spanContext().traceId;
    await context.with(trace.setSpan(context.active(), root), () => service.messaging!.request('recommendation.get-product', { id: 'traced-1' }));
    root.end();

    const send = spanNamed('recommendation.get-product send', traceId);
    // The consumer span ends once the request is settled, just after the reply went out.
    const consume = await waitFor('the consumer span to end', () => spanNamed('recommendation.get-product process', traceId));
    const reply = spanNamed('recommendation.get-product reply', traceId);
    expect(send).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanContext: expect.objectContaining({ spanId: root.spanContext().spanId }) });
    expect(consume).toMatchObject({ kind: SpanKind.CONSUMER, parentSpanContext: expect.objectContaining({ spanId: send!.spanContext().spanId }) });
    expect(reply).toMatchObject({ kind: SpanKind.PRODUCER, parentSpanContext: expect.objectContaining({ spanId: consume!.spanContext().spanId }) });
    expect(consume!.attributes).toMatchObject({ 'messaging.system': 'servicebus', 'messaging.destination.name': queues.recommendationRequests });
    // The handler runs inside the consumer span; the message carried the producer span as traceparent.
    expect(seen.get('request:traced-1')).toEqual({ traceId, spanId: consume!.spanContext().spanId, traceparent: `00-${traceId}-${send!.spanContext().spanId}-01` });
  });

  it('continues the publisher\'s trace in every event handler', async () => {
    const root = tracer.startSpan('PUT /products/traced-2');
    const traceId = root.spanContext().traceId;
    await context.with(trace.setSpan(context.active(), root), () =>
      service.messaging!.publish('catalog.product.upserted', { product: testProduct('traced-2'), upsertedAt: new Date().toISOString() }),
    );
    root.end();
    const handled = await waitFor('the event handler to run', () => seen.get('event:traced-2'));
    const consume = await waitFor('the consumer span to end', () => spanNamed('catalog.product.upserted process', traceId));
    expect(handled.traceId).toBe(traceId);
    expect(consume.parentSpanContext?.spanId).toBe(spanNamed('catalog.product.upserted send', traceId)!.spanContext().spanId);
  });

  it('records on each consumer span whether the handler ran (handled) or the idempotency guard answered (duplicate)', async () => {
    // The same request twice, as a redelivery after a lost lock or a requester's re-send arrives (the requests
    // queue has no duplicate detection): the first runs the handler, the second is answered from the stored reply.
    const sender = bus.client().createSender(queues.recommendationRequests);
    const request = { messageId: 'outcome-twice', subject: 'recommendation.get-product', body: { id: 'outcome' }, replyTo: queues.replies, replyToSessionId: 'nobody-listens' };
    const outcomes = () => spans().filter((s) => s.attributes['messaging.message.id'] === 'outcome-twice').map((s) => s.attributes[outcomeAttribute]);
    await sender.sendMessages(request);
    await waitFor('the first delivery to be settled', () => outcomes().length === 1 || undefined);
    await sender.sendMessages(request);
    await waitFor('the second delivery to be settled', () => outcomes().length === 2 || undefined);
    await sender.close();
    expect(outcomes()).toEqual(['handled', 'duplicate']);
  });

  it('starts a new trace for a message that carries none', async () => {
    const sender = bus.client().createSender(topics.events);
    await sender.sendMessages({ subject: 'catalog.product.upserted', body: { product: testProduct('untraced'), upsertedAt: new Date().toISOString() } });
    await sender.close();
    const handled = await waitFor('the event handler to run', () => seen.get('event:untraced'));
    expect(handled.traceparent).toBeUndefined();
    expect(handled.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(spans().find((s) => s.name === 'catalog.product.upserted process' && s.spanContext().traceId === handled.traceId)?.parentSpanContext).toBeUndefined();
  });
});
