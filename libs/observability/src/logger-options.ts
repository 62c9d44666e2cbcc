import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { Params } from 'nestjs-pino';

/** Options of {@link loggerOptions}. */
export interface LoggerOptions {
  /** Service name on every line (`service`). */
  service: string;
  /** Minimum level. **Default**: `info`. */
  level?: string;
  /** Pretty, single-line output for a terminal instead of JSON. **Default**: false. */
  pretty?: boolean;
}

/**
 * Structured JSON logs (pino) for every Keyless service: one line per event with `service`, the W3C
 * `trace_id`/`span_id` of the active span (so a line finds its trace and vice versa), and a request id
 * per HTTP request. Authorization headers are redacted; health probes are not logged.
 */
export function loggerOptions(options: LoggerOptions): Params {
  return {
    pinoHttp: {
      level: options.level ?? 'info',
      base: { service: options.service },
      messageKey: 'message',
      mixin: () => {
        const span = trace.getActiveSpan()?.spanContext();
        return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-identity-header"]'], censor: '[redacted]' },
      genReqId: (request: IncomingMessage) => {
        const given = request.headers['x-request-id'];
        return typeof given === 'string' && given.length <= 100 ? given : randomUUID();
      },
      autoLogging: { ignore: (request: IncomingMessage) => (request.url ?? '').startsWith('/health') },
      ...(options.pretty ? { transport: { target: 'pino/file', options: { destination: 1 } } } : {}),
    },
  };
}
