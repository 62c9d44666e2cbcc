import { metrics } from '@opentelemetry/api';

const meter = metrics.getMeter('@keyless/messaging');

/** Transport metrics (no-ops until the app registers an OpenTelemetry meter provider). */
export const messagingMetrics = {
  handled: meter.createCounter('messaging.messages.handled', { description: 'Messages whose handler resolved' }),
  failed: meter.createCounter('messaging.messages.failed', { description: 'Handler failures (each attempt)' }),
  deadLettered: meter.createCounter('messaging.messages.dead_lettered', { description: 'Messages dead-lettered by the settlement policy' }),
  handlerDuration: meter.createHistogram('messaging.handler.duration', { description: 'Handler run time', unit: 'ms' }),
  requestDuration: meter.createHistogram('messaging.request.duration', { description: 'Request to reply, client side', unit: 'ms' }),
};
