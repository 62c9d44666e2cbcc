import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type INestApplicationContext, Logger, ShutdownSignal } from '@nestjs/common';
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
  // reads the pipe, as the next request arrived. pino writes what is left synchronously when the process exits, but
  // not a line already handed to the thread pool: a service waits for `logsWritten` before it exits (`stopOnSignals`).
  return { pinoHttp: [pinoOptions, stdoutDestination()] };
}

type Destination = ReturnType<typeof pino.destination>;

/** The process's one asynchronous stdout: every logger built from `loggerOptions` shares it, so lines keep their order. */
let stdout: Destination | undefined;

function stdoutDestination(): Destination {
  return (stdout ??= pino.destination({ dest: 1, sync: false }));
}

/**
 * Resolves once every line queued for stdout so far has been written, or after `timeoutInMs` (a reader that stopped
 * reading must not keep a stopping process alive). Why a service waits for it before exiting: pino's exit handler
 * writes the queued lines synchronously but cannot wait for the write already in flight in the thread pool — that
 * line came out after the ones queued behind it, or not at all.
 */
function logsWritten(timeoutInMs: number): Promise<void> {
  const destination = stdout;
  if (!destination) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      destination.off('drain', done).off('error', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutInMs);
    destination.once('drain', done).once('error', done);
    // An empty write queues behind whatever is pending; the destination says 'drain' once all of it is written.
    try {
      destination.write('');
    } catch {
      done(); // destroyed (stdout closed): nothing more can be written
    }
  });
}

/**
 * Bounds of a stop on a signal, in ms from the signal. Docker (`docker stop`, `docker compose down`) sends SIGKILL 10 s
 * after SIGTERM, and a process killed that way loses the log lines it had queued: the whole stop ends within 8 s,
 * leaving 2 s for timers that fire late on a loaded machine. The app's own bounds fit within `closeInMs` with a second
 * to spare: the gateway's HTTP drain (4 s), then its bus client's close (1 s); a bus service's handler drain (4 s),
 * then its abandons and links (1 s), then its bus client's close (1 s).
 */
export const stopBounds = {
  /** How long `app.close()` may take before the process exits without it, with exit code 1. */
  closeInMs: 7_000,
  /** When the process exits at the latest: the queued log lines get what is left of it (2 s at most). */
  exitInMs: 8_000,
};

/**
 * How every Keyless service stops on a signal: `app.close()` (the drain, then the shutdown hooks), then every queued
 * log line written (`logsWritten`), then exit code 0 — or 1, with the error logged, when closing failed. Nest's own
 * `enableShutdownHooks` ends the process as soon as the hooks return: re-raising the signal lost the lines of the
 * drain and the hooks; `process.exit` wrote them, but one still in flight came out last or not at all. A second signal
 * while stopping is ignored. For a process's one app: the listeners stay for the life of the process.
 *
 * The stop is bounded ({@link stopBounds}): an app still closing after `closeInMs` is left as it is, with one error
 * line saying so, and the process exits with code 1. What it was still doing ends with the process; a Keyless service
 * loses nothing by that (a Service Bus message it had not settled stays on the broker and is redelivered once its
 * lock expires), but a close that needed the bound is a defect of its own bounds, hence the exit code.
 */
export function stopOnSignals(app: INestApplicationContext, signals: readonly string[] = Object.values(ShutdownSignal), bounds = stopBounds): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const signalled = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const cutShort = new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        new Logger('Shutdown').error(
          `${signal}: the app did not close within ${bounds.closeInMs} ms; exiting without it (exit code 1). What it was still doing ends with the process: unsettled Service Bus messages stay on the broker and are redelivered once their locks expire.`,
        );
        resolve(1);
      }, bounds.closeInMs);
    });
    const closed = app.close().then(
      () => 0,
      (error: unknown) => {
        new Logger('Shutdown').error(`closing the app failed: ${(error as Error).message}`, (error as Error).stack);
        return 1;
      },
    );
    void Promise.race([closed, cutShort]).then(async (code) => {
      clearTimeout(timer);
      await logsWritten(Math.max(0, Math.min(2_000, bounds.exitInMs - (performance.now() - signalled))));
      process.exit(code);
    });
  };
  for (const signal of signals) process.on(signal, stop);
}

/** What an access line says about a request (pino-http hands the serializer pino's view of it). */
function requestSummary(request: { id?: unknown; method?: string; url?: string; remoteAddress?: string }): Record<string, unknown> {
  return { id: request.id, method: request.method, url: request.url, remoteAddress: request.remoteAddress };
}

/** What an access line says about a response. */
function responseSummary(response: { statusCode?: number }): Record<string, unknown> {
  return { statusCode: response.statusCode };
}
