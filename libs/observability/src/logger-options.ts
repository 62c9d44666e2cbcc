import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { Params } from 'nestjs-pino';
import pino from 'pino';

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
 * per HTTP request. The access line names the request (`req`: id, method, URL, client address) and its answer
 * (`res`: status, `responseTime`), not their headers: pino-http's default serializers write every request and
 * response header (a dozen security headers on each answer), and serialising, redacting and forwarding them was
 * 10–13 % of the gateway's CPU. Authorization headers are redacted wherever a header is logged; health probes are
 * not logged.
 */
export function loggerOptions(options: LoggerOptions): Params {
  const pinoOptions = {
    level: options.level ?? 'info',
    base: { service: options.service },
    messageKey: 'message',
    mixin: () => {
      const span = trace.getActiveSpan()?.spanContext();
      return span ? { trace_id: span.traceId, span_id: span.spanId } : {};
    },
    serializers: { req: requestSummary, res: responseSummary },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-identity-header"]'], censor: '[redacted]' },
    genReqId: (request: IncomingMessage) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && given.length <= 100 ? given : randomUUID();
    },
    autoLogging: { ignore: (request: IncomingMessage) => (request.url ?? '').startsWith('/health') },
  };
  if (options.pretty) return { pinoHttp: { ...pinoOptions, transport: { target: 'pino/file', options: { destination: 1 } } } };
  // Written to stdout asynchronously: a synchronous write per access line held the gateway's event loop, and whoever
  // reads the pipe, as the next request arrived. pino flushes what is left synchronously when the process exits —
  // which is why a service stops with `flushingShutdown` below.
  return { pinoHttp: [pinoOptions, pino.destination({ dest: 1, sync: false })] };
}

/**
 * How a service whose logs are written asynchronously stops on a signal: Nest ends the process with `exit` after its
 * shutdown hooks, so pino's exit handler writes every queued line. Nest's default re-raises the signal instead, which
 * ends the process at once: the lines of the last tick — the drain's, the shutdown's — were lost.
 */
export const flushingShutdown = { useProcessExit: true } as const;

/** What an access line says about a request (pino-http hands the serializer pino's view of it). */
function requestSummary(request: { id?: unknown; method?: string; url?: string; remoteAddress?: string }): Record<string, unknown> {
  return { id: request.id, method: request.method, url: request.url, remoteAddress: request.remoteAddress };
}

/** What an access line says about a response. */
function responseSummary(response: { statusCode?: number }): Record<string, unknown> {
  return { statusCode: response.statusCode };
}
