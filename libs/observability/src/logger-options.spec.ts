import { createServer } from 'node:http';
import { Writable } from 'node:stream';
import { context, trace, type Span } from '@opentelemetry/api';
import { pinoHttp } from 'pino-http';
import pino from 'pino';
import { loggerOptions } from './logger-options.js';
import { startTelemetry } from './telemetry.js';

/** Runs one HTTP request through pino-http configured by loggerOptions and returns the JSON lines. */
async function logOf(headers: Record<string, string>, inSpan?: Span): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
  const [options] = loggerOptions({ service: 'test-service' }).pinoHttp as [Parameters<typeof pinoHttp>[0] & pino.LoggerOptions, unknown];
  const middleware = pinoHttp({ ...options, logger: pino(options, sink) });
  const server = createServer((req, res) => {
    const handle = () => middleware(req, res, () => {
      req.log.info('handled');
      res.end('ok');
    });
    if (inSpan) context.with(trace.setSpan(context.active(), inSpan), handle);
    else handle();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/items`, { headers })).text();
  server.close();
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('loggerOptions', () => {
  it('writes JSON lines with the service name and a request id', async () => {
    const [line] = await logOf({ 'x-request-id': 'req-42' });
    expect(line).toMatchObject({ service: 'test-service', message: 'handled', req: { id: 'req-42' } });
  });

  it('never writes the Authorization header', async () => {
    const text = JSON.stringify(await logOf({ authorization: 'Bearer eyJhbGciOi.not-a-real-token' }));
    expect(text).not.toContain('eyJhbGciOi');
  });

  it('writes an access line with the request and its status, without headers', async () => {
    const lines = await logOf({ 'x-request-id': 'req-7', 'user-agent': 'probe/1', cookie: 'session=abc' });
    const access = lines.find((line) => line.message === 'request completed');
    expect(access).toMatchObject({ req: { id: 'req-7', method: 'GET', url: '/items', remoteAddress: '127.0.0.1' }, res: { statusCode: 200 }, responseTime: expect.any(Number) });
    expect(Object.keys(access!.req as object).sort()).toEqual(['id', 'method', 'remoteAddress', 'url']);
    expect(access!.res).toEqual({ statusCode: 200 });
    expect(JSON.stringify(lines)).not.toContain('session=abc');
  });

  it('puts the active span\'s trace and span ids on each line (telemetry started)', async () => {
    const telemetry = startTelemetry({ serviceName: 'test-service' });
    const span = trace.getTracer('test').startSpan('request');
    const [line] = await logOf({}, span);
    span.end();
    await telemetry.shutdown();
    expect(line).toMatchObject({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});
