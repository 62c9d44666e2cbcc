import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';

/** A metric reader collected on demand (the OpenTelemetry SDK's own pull path). */
class OnDemandReader extends MetricReader {
  // Nothing is buffered or exported: collect() reads the SDK's state directly.
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A real OpenTelemetry SDK meter provider whose metrics tests read back. */
export class TestMetrics {
  private readonly reader = new OnDemandReader();
  readonly provider = new MeterProvider({ readers: [this.reader] });

  /** Sum of a counter's data points whose attributes include `attributes`. */
  async sum(name: string, attributes: Record<string, string> = {}): Promise<number> {
    return (await this.points(name, attributes)).reduce((total, point) => total + (point.value as number), 0);
  }

  /** Number of recordings of a histogram whose attributes include `attributes`. */
  async count(name: string, attributes: Record<string, string> = {}): Promise<number> {
    return (await this.points(name, attributes)).reduce((total, point) => total + (point.value as Histogram).count, 0);
  }

  /** Values of a gauge's data points. */
  async gauge(name: string): Promise<{ value: number; attributes: Record<string, unknown> }[]> {
    return (await this.points(name, {})).map((p) => ({ value: p.value as number, attributes: p.attributes }));
  }

  private async points(name: string, attributes: Record<string, string>): Promise<DataPoint<unknown>[]> {
    const { resourceMetrics } = await this.reader.collect();
    return resourceMetrics.scopeMetrics
      .flatMap((scope) => scope.metrics)
      .filter((metric) => metric.descriptor.name === name)
      .flatMap((metric) => metric.dataPoints as DataPoint<unknown>[])
      .filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
  }
}
