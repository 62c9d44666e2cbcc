import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = trace.getTracer('@keyless/http');

/**
 * Express middleware that opens a server span per request — continuing the caller's W3C trace when a
 * `traceparent` header comes in — and makes it active for everything the request does (logs, bus
 * messages, AI calls), so one trace runs from HTTP through the bus to Azure OpenAI and Vision.
 */
export function httpTracing(): (request: IncomingMessage & { route?: { path?: string } }, response: ServerResponse, next: () => void) => void {
  return (request, response, next) => {
    const parent = propagation.extract(context.active(), request.headers);
    const span = tracer.startSpan(
      request.method ?? 'HTTP',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method ?? '', 'url.path': (request.url ?? '').split('?')[0] ?? '' } },
      parent,
    );
    response.once('finish', () => {
      const route = request.route?.path;
      if (route) span.updateName(`${request.method} ${route}`);
      span.setAttribute('http.response.status_code', response.statusCode);
      if (route) span.setAttribute('http.route', route);
      if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
