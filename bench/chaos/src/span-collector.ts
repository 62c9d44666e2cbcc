import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The messaging transport's span attribute with what happened to a message (see service-bus.server.ts). */
const outcomeAttribute = 'keyless.messaging.outcome';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean };
}

interface OtlpTraces {
  resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: { name: string; attributes?: OtlpAttribute[] }[] }[] }[];
}

/** One `<pattern> process` span: a service received a message and the transport decided its outcome. */
export interface ConsumerRun {
  service: string;
  entity: string;
  messageId: string;
  outcome: string;
}

/**
 * An OTLP/HTTP (JSON) collector for the services' spans (`OTEL_EXPORTER_OTLP_ENDPOINT`), keeping the consumer spans
 * of the messaging transport: one per delivery, with the message id and its outcome. Metrics posts are accepted
 * and dropped.
 */
export class SpanCollector {
  readonly runs: ConsumerRun[] = [];
  private constructor(private readonly server: Server) {}

  static async start(): Promise<SpanCollector> {
    const server = createServer();
    const collector = new SpanCollector(server);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url === '/v1/traces') {
          try {
            collector.collect(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpTraces);
          } catch {
            // A body that is not JSON is not ours to judge; the exporter is told it was taken.
          }
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return collector;
  }

  /** The endpoint to give the services as `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** `handled` runs by entity and message id. */
  handledRuns(): Map<string, Map<string, number>> {
    const byEntity = new Map<string, Map<string, number>>();
    for (const run of this.runs) {
      if (run.outcome !== 'handled') continue;
      const byId = byEntity.get(run.entity) ?? new Map<string, number>();
      byId.set(run.messageId, (byId.get(run.messageId) ?? 0) + 1);
      byEntity.set(run.entity, byId);
    }
    return byEntity;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private collect(traces: OtlpTraces): void {
    for (const { resource, scopeSpans } of traces.resourceSpans ?? []) {
      const service = text(resource?.attributes, 'service.name') ?? 'unknown';
      for (const scope of scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          if (!span.name.endsWith(' process')) continue;
          const messageId = text(span.attributes, 'messaging.message.id');
          const outcome = text(span.attributes, outcomeAttribute);
          if (!messageId || !outcome) continue;
          this.runs.push({ service, entity: text(span.attributes, 'messaging.destination.name') ?? 'unknown', messageId, outcome });
        }
      }
    }
  }
}

function text(attributes: OtlpAttribute[] | undefined, key: string): string | undefined {
  const value = attributes?.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue !== undefined ? String(value.intValue) : undefined);
}
