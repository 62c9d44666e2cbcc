import { metrics } from '@opentelemetry/api';
import type { TokenCredential } from '@azure/core-auth';
import { AzureMonitorMetricExporter, AzureMonitorTraceExporter } from '@azure/monitor-opentelemetry-exporter';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Context } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { settingsSchema, type Settings } from '@keyless/contracts';
import { z } from 'zod';

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` of every span and metric. */
  serviceName: string;
  /** OTLP/HTTP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://localhost:4318`). Default: no OTLP export. */
  otlpEndpoint?: string;
  /** How often metrics are exported. **Default**: 30000 ms. */
  metricIntervalInMs?: number;
}

/** Running telemetry: where spans and metrics go, and how to stop it. */
export interface Telemetry {
  /**
   * Also exports to Azure Monitor (Application Insights), authenticating with `credential` — the process's
   * managed identity from `@keyless/auth`. The connection string only routes (ingestion endpoint and
   * component); with local auth disabled on the component, only the identity's token is accepted.
   */
  exportToAzureMonitor(connectionString: string, credential: TokenCredential): void;
  /** Flushes and stops exporting. */
  shutdown(): Promise<void>;
}

/**
 * Sets up OpenTelemetry for a service, once, before its modules are loaded (import it first in main):
 * an AsyncLocalStorage context manager and the W3C trace-context propagator (so trace ids reach logs and
 * cross the bus), a tracer provider and a meter provider. Spans are recorded even when nothing exports
 * them; exporters are added for OTLP (when an endpoint is given) and Azure Monitor (once the credential
 * exists, after the app is built).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const resource = resourceFromAttributes({ 'service.name': options.serviceName, 'service.namespace': 'keyless' });
  const spanProcessors = new FanOutSpanProcessor();
  const metricExporters = new FanOutMetricExporter();
  if (options.otlpEndpoint) {
    const base = options.otlpEndpoint.replace(/\/+$/, '');
    spanProcessors.add(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` })));
    metricExporters.add(new OTLPMetricExporter({ url: `${base}/v1/metrics` }));
  }
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessors] });
  tracerProvider.register();
  const meterProvider = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({ exporter: metricExporters, exportIntervalMillis: options.metricIntervalInMs ?? 30_000 })],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    exportToAzureMonitor(connectionString, credential) {
      spanProcessors.add(new BatchSpanProcessor(new AzureMonitorTraceExporter({ connectionString, credential, disableOfflineStorage: true })));
      metricExporters.add(new AzureMonitorMetricExporter({ connectionString, credential, disableOfflineStorage: true }));
    },
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** Telemetry's own variable (blank means unset, as for the service's other settings). */
const telemetrySettings = settingsSchema({
  /** OTLP/HTTP collector (e.g. http://localhost:4318). Unset: spans are recorded but not exported over OTLP. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
});

/**
 * {@link startTelemetry} for a service, with the OTLP endpoint from its environment (`OTEL_EXPORTER_OTLP_ENDPOINT`;
 * blank means unset). Call it in the service's `instrumentation.ts`, imported first by `main.ts`.
 *
 * @example
 * export const telemetry = startServiceTelemetry('vision', process.env);
 */
export function startServiceTelemetry(serviceName: string, env: Settings): Telemetry {
  const settings = telemetrySettings.parse(env);
  return startTelemetry({ serviceName, ...(settings.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: settings.OTEL_EXPORTER_OTLP_ENDPOINT } : {}) });
}

/** Span processors that can be added after the provider is built (Azure Monitor needs the app's credential). */
class FanOutSpanProcessor implements SpanProcessor {
  private readonly processors: SpanProcessor[] = [];

  add(processor: SpanProcessor): void {
    this.processors.push(processor);
  }

  onStart(span: Span, parentContext: Context): void {
    for (const processor of this.processors) processor.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    for (const processor of this.processors) processor.onEnd(span);
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.forceFlush()));
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.processors.map((p) => p.shutdown()));
  }
}

/** Metric exporters that can be added after the reader is built; with none, exports go nowhere. */
class FanOutMetricExporter implements PushMetricExporter {
  private readonly exporters: PushMetricExporter[] = [];

  add(exporter: PushMetricExporter): void {
    this.exporters.push(exporter);
  }

  export(metrics_: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    if (this.exporters.length === 0) return resultCallback({ code: 0 });
    let pending = this.exporters.length;
    let failed: ExportResult | undefined;
    for (const exporter of this.exporters) {
      exporter.export(metrics_, (result) => {
        if (result.code !== 0) failed = result;
        if (--pending === 0) resultCallback(failed ?? { code: 0 });
      });
    }
  }

  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.forceFlush()));
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.shutdown()));
  }
}

