import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { slowClient } from '@keyless/testing';
import { answerClientErrors, type ClientErrorRefusal, type RefusedClientRequest } from './http-client-errors.js';
import { httpServerOptions } from './service-settings.js';

describe(answerClientErrors.name, () => {
  const deadlineInMs = 10_000;
  let server: Server;
  let origin: string;
  const refusals: ClientErrorRefusal[] = [];
  const refused: RefusedClientRequest[] = [];

  async function start(listener: RequestListener): Promise<void> {
    server = createServer(httpServerOptions({ headersTimeoutInMs: 300, requestTimeoutInMs: 600, keepAliveTimeoutInMs: 5_000 }), listener);
    answerClientErrors(server, (refusal) => {
      refusals.push(refusal);
      return { contentType: 'text/plain; charset=utf-8', body: `${refusal.kind}: ${refusal.detail}` };
    }, { onRefused: (request) => refused.push(request) });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeEach(() => {
    refusals.splice(0);
    refused.splice(0);
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
