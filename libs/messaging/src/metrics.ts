import { metrics, type MeterProvider } from '@opentelemetry/api';

/**
 * Transport metrics. The meter comes from the provider given in the options, else from the global one
 * at the time the server or proxy is constructed (an app registers its OpenTelemetry SDK before it
 * builds its Nest app; a meter taken when this module loads would stay a no-op forever).
 */
export class MessagingMetrics {
  readonly handled;
  readonly failed;
  readonly deadLettered;
  readonly handlerDuration;
  readonly requestDuration;

  constructor(provider: MeterProvider = metrics.getMeterProvider()) {
    const meter = provider.getMeter('@keyless/messaging');
    this.handled = meter.createCounter('messaging.messages.handled', { description: 'Messages whose handler resolved' });
    this.failed = meter.createCounter('messaging.messages.failed', { description: 'Handler failures (each attempt)' });
    this.deadLettered = meter.createCounter('messaging.messages.dead_lettered', { description: 'Messages dead-lettered by the settlement policy' });
    this.handlerDuration = meter.createHistogram('messaging.handler.duration', { description: 'Handler run time', unit: 'ms' });
    this.requestDuration = meter.createHistogram('messaging.request.duration', { description: 'Request to reply, client side', unit: 'ms' });
  }
}
