import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { describe } from './error-description.js';

const tracer = trace.getTracer('@keyless/messaging');

/**
 * Runs `fn` in a producer span and writes the W3C trace context (`traceparent`, `tracestate`) into
 * `applicationProperties`, so the consumer continues the trace.
 */
export async function withProducerSpan<T>(
  name: string,
  attributes: Attributes,
  applicationProperties: Record<string, string | number | boolean>,
  fn: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    propagation.inject(context.active(), applicationProperties);
    return finish(span, fn);
  });
}

/** Runs `fn` in a consumer span whose parent is the trace context carried by the message, if any. */
export async function withConsumerSpan<T>(
  name: string,
  attributes: Attributes,
  applicationProperties: Record<string, unknown> | undefined,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const carrier = Object.fromEntries(Object.entries(applicationProperties ?? {}).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  const parent = propagation.extract(context.active(), carrier);
  return context.with(parent, () => tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER, attributes }, (span) => finish(span, () => fn(span))));
}

async function finish<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: describe(error) });
    throw error;
  } finally {
    span.end();
  }
}
