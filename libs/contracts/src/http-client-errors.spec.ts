import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { slowClient } from '@keyless/testing';
import { answerClientErrors, logLineBound, refusalLogLines, type ClientErrorRefusal, type CutOffResponse, type RefusedClientRequest } from './http-client-errors.js';
import { httpServerOptions } from './service-settings.js';

describe(answerClientErrors.name, () => {
  const deadlineInMs = 10_000;
  let server: Server;
  let origin: string;
  const refusals: ClientErrorRefusal[] = [];
  const refused: RefusedClientRequest[] = [];
  const cutOff: CutOffResponse[] = [];

  async function start(listener: RequestListener): Promise<void> {
    server = createServer(httpServerOptions({ headersTimeoutInMs: 300, requestTimeoutInMs: 600, keepAliveTimeoutInMs: 5_000 }), listener);
    answerClientErrors(server, (refusal) => {
      refusals.push(refusal);
      return { contentType: 'text/plain; charset=utf-8', body: `${refusal.kind}: ${refusal.detail}` };
    }, { onRefused: (request) => refused.push(request), onCutOff: (response) => cutOff.push(response) });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeEach(() => {
    refusals.splice(0);
    refused.splice(0);
    cutOff.splice(0);
  });
  afterEach(() => new Promise((resolve) => server.close(resolve)));

  it('answers chunk extensions over Node’s limit with a whole 413 response and closes the connection', async () => {
    await start((request, response) => request.resume().on('end', () => response.end('read')));
    const head = 'POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n';
    const outcome = await slowClient({ origin, head: `${head}1;${'x'.repeat(20 * 1024)}\r\n`, deadlineInMs });
    const body = 'chunk-extensions-too-large: The chunk extensions of the request body are too long: send its chunks without extensions.';
    expect(outcome.received).toBe(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });

  it('says what the listener’s timeouts are when a client is too slow', async () => {
    await start((_request, response) => response.end('never'));
    await slowClient({ origin, head: 'GET / HTTP/1.1\r\n', trickle: 'Host: localhost', deadlineInMs });
    expect(refusals).toEqual([{ kind: 'request-timeout', status: 408, title: 'Request Timeout', detail: 'The request did not arrive in time: send its headers within 300 ms and the whole request within 600 ms.' }]);
  });

  it('closes the connection without a second answer when the request times out after its response began', async () => {
    // The handler answers at once but the client trickles the body: the request timeout still applies to receiving it.
    await start((_request, response) => response.writeHead(200, { 'content-type': 'text/plain' }).flushHeaders());
    const outcome = await slowClient({ origin, head: 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4000\r\n\r\n', trickle: 'a'.repeat(4000), deadlineInMs });
    expect(outcome.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(outcome.received).not.toContain('408');
    expect(refusals).toEqual([]);
    expect(refused).toEqual([]);
  });

  describe('with onCutOff', () => {
    it('tells it of a response cut off by the request timeout: method, path without query, status sent, elapsed time, never a byte', async () => {
      await start((_request, response) => response.writeHead(202, { 'content-type': 'text/plain' }).flushHeaders());
      const head = 'POST /uploads/7?token=secret HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\r\nContent-Length: 4000\r\n\r\n';
      const outcome = await slowClient({ origin, head, trickle: 'a'.repeat(4000), deadlineInMs });
      const port = Number(new URL(origin).port);
      expect(cutOff).toEqual([
        {
          method: 'POST',
          path: '/uploads/7',
          status: 202,
          elapsedInMs: expect.any(Number),
          code: 'ERR_HTTP_REQUEST_TIMEOUT',
          remoteAddress: '127.0.0.1',
          remotePort: outcome.localPort,
          localAddress: '127.0.0.1',
          localPort: port,
        },
      ]);
      // Node checks the request timeout periodically: the cut comes at its limit or after, never before.
      expect(cutOff[0]!.elapsedInMs).toBeGreaterThanOrEqual(600);
      expect(JSON.stringify(cutOff)).not.toMatch(/secret|payload|Bearer/);
    });

    it('hears nothing of a response that ended before the request timed out: that client got its whole answer', async () => {
      await start((_request, response) => response.end('early'));
      await slowClient({ origin, head: 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4000\r\n\r\n', trickle: 'a'.repeat(4000), deadlineInMs });
      expect(cutOff).toEqual([]);
    });
  });

  describe('with onRefused', () => {
    it('tells it of each refusal answered: kind, status, Node’s code, the client’s and the listener’s address and port', async () => {
      await start((_request, response) => response.end('never'));
      const port = Number(new URL(origin).port);
      const headers = await slowClient({ origin, head: `GET / HTTP/1.1\r\nHost: localhost\r\nX-Large: ${'b'.repeat(17 * 1024)}\r\n\r\n`, deadlineInMs });
      const slow = await slowClient({ origin, head: 'GET / HTTP/1.1\r\n', trickle: 'Host: localhost', deadlineInMs });
      const client = { remoteAddress: '127.0.0.1', localAddress: '127.0.0.1', localPort: port };
      expect(refused).toEqual([
        { kind: 'headers-too-large', status: 431, code: 'HPE_HEADER_OVERFLOW', remotePort: headers.localPort, ...client },
        { kind: 'request-timeout', status: 408, code: 'ERR_HTTP_REQUEST_TIMEOUT', remotePort: slow.localPort, ...client },
      ]);
    });

    it('hears nothing of the bytes received or the parser’s message', async () => {
      await start((_request, response) => response.end('never'));
      await slowClient({ origin, head: 'GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\x01\r\n\r\n', deadlineInMs });
      expect(refused).toEqual([expect.objectContaining({ kind: 'malformed-request', status: 400, code: 'HPE_INVALID_HEADER_TOKEN' })]);
      expect(JSON.stringify(refused)).not.toMatch(/payload|Bearer|Invalid/);
    });
  });
});

describe(logLineBound.name, () => {
  let clock = 0;
  beforeEach(() => (clock = 1_000_000));

  it('allows at most its lines in a minute and marks the last', () => {
    const bound = logLineBound(2, () => clock);
    expect([bound(), bound(), bound()]).toEqual([{ notLoggedBefore: 0, lastOfMinute: false }, { notLoggedBefore: 0, lastOfMinute: true }, undefined]);
  });

  it('starts a minute at the first line asked for after the previous one ended, with the count of those not allowed', () => {
    const bound = logLineBound(2, () => clock);
    for (let i = 0; i < 5; i++) bound();
    clock += 59_999;
    expect(bound()).toBeUndefined();
    clock += 1;
    expect(bound()).toEqual({ notLoggedBefore: 4, lastOfMinute: false });
    clock += 60_000;
    expect(bound()).toEqual({ notLoggedBefore: 0, lastOfMinute: false });
  });
});

describe(refusalLogLines.name, () => {
  const refusal = (remotePort: number): RefusedClientRequest => ({ kind: 'malformed-request', status: 400, code: 'HPE_INVALID_METHOD', remoteAddress: '::1', remotePort, localAddress: '::1', localPort: 8080 });
  let clock = 0;
  beforeEach(() => (clock = 1_000_000));

  it('names the status, the kind, Node’s code, the client and the listener, in fields and in words', () => {
    expect(refusalLogLines('portal', 60, () => clock)({ ...refusal(1), remoteAddress: '127.0.0.1', localAddress: '127.0.0.1' })).toEqual({
      fields: { status: 400, kind: 'malformed-request', code: 'HPE_INVALID_METHOD', client: { address: '127.0.0.1', port: 1 }, listener: { name: 'portal', address: '127.0.0.1', port: 8080 } },
      message: "400 malformed-request (HPE_INVALID_METHOD) for 127.0.0.1:1 on the portal listener 127.0.0.1:8080: refused by Node's HTTP parser before any route",
    });
  });

  it('logs at most its lines a minute on a listener and says so on the last', () => {
    const lineOf = refusalLogLines('health details', 2, () => clock);
    expect([1, 2, 3, 4].map((port) => lineOf(refusal(port))?.message)).toEqual([
      "400 malformed-request (HPE_INVALID_METHOD) for [::1]:1 on the health details listener [::1]:8080: refused by Node's HTTP parser before any route",
      "400 malformed-request (HPE_INVALID_METHOD) for [::1]:2 on the health details listener [::1]:8080: refused by Node's HTTP parser before any route; further refusals on this listener are not logged for the rest of the minute (at most 2 lines a minute)",
      undefined,
      undefined,
    ]);
  });

  it('says how many were not logged on the first line of the next minute', () => {
    const lineOf = refusalLogLines('health details', 2, () => clock);
    for (const port of [1, 2, 3, 4]) lineOf(refusal(port));
    clock += 59_999;
    expect(lineOf(refusal(5))).toBeUndefined();
    clock += 1;
    expect(lineOf(refusal(6))).toEqual({
      fields: expect.objectContaining({ notLoggedBefore: 3 }),
      message: "400 malformed-request (HPE_INVALID_METHOD) for [::1]:6 on the health details listener [::1]:8080: refused by Node's HTTP parser before any route; 3 earlier refusals on this listener were not logged",
    });
  });
});
