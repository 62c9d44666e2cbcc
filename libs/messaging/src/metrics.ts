import { metrics, type Counter, type Histogram } from '@opentelemetry/api';

interface MessagingInstruments {
  handled: Counter;
  failed: Counter;
  deadLettered: Counter;
  handlerDuration: Histogram;
  requestDuration: Histogram;
}

let instruments: MessagingInstruments | undefined;

/**
 * Transport metrics, created on first use from the global meter provider — so an app that starts
 * OpenTelemetry in main.ts gets real instruments whatever order its modules load in.
 */
export function messagingMetrics(): MessagingInstruments {
  if (instruments) return instruments;
  const meter = metrics.getMeter('@keyless/messaging');
  instruments = {
    handled: meter.createCounter('messaging.messages.handled', { description: 'Messages whose handler resolved' }),
    failed: meter.createCounter('messaging.messages.failed', { description: 'Handler failures (each attempt)' }),
    deadLettered: meter.createCounter('messaging.messages.dead_lettered', { description: 'Messages dead-lettered by the settlement policy' }),
    handlerDuration: meter.createHistogram('messaging.handler.duration', { description: 'Handler run time', unit: 'ms' }),
    requestDuration: meter.createHistogram('messaging.request.duration', { description: 'Request to reply, client side', unit: 'ms' }),
  };
  return instruments;
}
