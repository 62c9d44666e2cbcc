import { createServer } from 'node:http';
import { trace } from '@opentelemetry/api';
import { httpTracing } from './http-tracing.js';
import { startTelemetry } from './telemetry.js';

describe('httpTracing', () => {
  const telemetry = startTelemetry({ serviceName: 'http-test' });
  afterAll(() => telemetry.shutdown());

  it("continues the caller's trace from the traceparent header and makes the span active for the handler", async () => {
    const middleware = httpTracing();
    let seen: { traceId: string; spanId: string } | undefined;
    const server = createServer((req, res) =>
      middleware(req, res, () => {
        seen = trace.getActiveSpan()?.spanContext();
        res.end('ok');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await (await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/x`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })).text();
    server.close();
    expect(seen?.traceId).toBe(traceId);
    expect(seen?.spanId).not.toBe('00f067aa0ba902b7');
  });
});
