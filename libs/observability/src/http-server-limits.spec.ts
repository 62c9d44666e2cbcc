import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Logger, Post, Req, Res, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Logger as PinoNestLogger, PinoLogger } from 'nestjs-pino';
import type { RefusedClientRequest } from '@keyless/contracts';
import { slowClient, type SlowClientOutcome } from '@keyless/testing';
import { applyHttpServerLimits, HTTP_SERVER_LIMITS, HttpServerLimitsModule, refusalLog } from './http-server-limits.js';
import { loggerOptions } from './logger-options.js';

/** Every line the service's logger (pino with the services' own options, behind Nest's `Logger`) writes, as written. */
const written: string[] = [];

/** What a service's `app.useLogger(app.get(Logger))` does: Nest's `Logger` writes through nestjs-pino to pino. */
function useServiceLogger(): void {
  const [options] = loggerOptions({ service: 'test-service' }).pinoHttp as [object, unknown];
  const destination = new Writable({ write: (chunk: Buffer, _encoding, done) => (written.push(chunk.toString('utf8')), done()) });
  Logger.overrideLogger(new PinoNestLogger(new PinoLogger({ pinoHttp: [options, destination] }), {}));
}

/** The log lines about the connection from `clientPort`, as written. */
function writtenAbout(clientPort: number | undefined): string[] {
  return written.filter((line) => (JSON.parse(line) as { client?: { port?: number } }).client?.port === clientPort);
}

/** The same, parsed. */
function linesOf(clientPort: number | undefined): Record<string, unknown>[] {
  return writtenAbout(clientPort).map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The status line, the headers (lower-cased names) and the body of the one response a connection got. */
function parse(outcome: SlowClientOutcome): { statusLine: string; headers: Record<string, string>; body: string } {
  const [head, body] = outcome.received.split('\r\n\r\n') as [string, string];
  const [statusLine, ...lines] = head.split('\r\n');
  return { statusLine: statusLine!, headers: Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])), body };
}

describe(applyHttpServerLimits.name, () => {
  const deadlineInMs = 10_000;
  let server: Server;
  let origin: string;

  beforeAll(async () => {
    useServiceLogger();
    server = createServer((_request, response) => response.end('ok'));
    applyHttpServerLimits(server, { headersTimeoutInMs: 300, requestTimeoutInMs: 600, keepAliveTimeoutInMs: 5_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  /** Asserts a whole problem-details response with `Connection: close` and returns its body. */
  function problemOf(outcome: SlowClientOutcome, statusLine: string): Record<string, unknown> {
    const response = parse(outcome);
    expect(response.statusLine).toBe(statusLine);
    expect(response.headers).toMatchObject({ 'content-type': 'application/problem+json', connection: 'close', 'content-length': String(Buffer.byteLength(response.body)) });
    return JSON.parse(response.body) as Record<string, unknown>;
  }

  describe('when Node’s HTTP parser refuses a request', () => {
    it('answers a malformed request line with 400 problem details and closes the connection', async () => {
      const outcome = await slowClient({ origin, head: 'GET /\x01secret HTTP/1.1\r\nHost: localhost\r\n\r\n', deadlineInMs });
      const problem = problemOf(outcome, 'HTTP/1.1 400 Bad Request');
      expect(problem).toEqual({
        type: 'https://keyless.dev/problems/malformed-request',
        title: 'Bad Request',
        status: 400,
        detail: 'The request line or a header is not valid HTTP/1.1: send a well-formed request.',
      });
      // Neither the parser's words (error code, reason, the bytes it read) nor what the client sent comes back.
      expect(outcome.received).not.toMatch(/HPE_|Invalid|secret|bytesParsed|rawPacket/);
    });

    it('logs one warn line of the service’s logger per refusal: status, kind, Node’s code, the client and the listener', async () => {
      const outcome = await slowClient({ origin, head: 'GET / HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\x01\r\n\r\n', deadlineInMs });
      expect(parse(outcome).statusLine).toBe('HTTP/1.1 400 Bad Request');
      const port = Number(new URL(origin).port);
      expect(linesOf(outcome.localPort)).toEqual([
        expect.objectContaining({
          level: 40,
          service: 'test-service',
          context: 'HttpParser',
          status: 400,
          kind: 'malformed-request',
          code: 'HPE_INVALID_HEADER_TOKEN',
          client: { address: '127.0.0.1', port: outcome.localPort },
          listener: { name: 'app', address: '127.0.0.1', port },
          message: `400 malformed-request (HPE_INVALID_HEADER_TOKEN) for 127.0.0.1:${outcome.localPort} on the app listener 127.0.0.1:${port}: refused by Node's HTTP parser before any route`,
        }),
      ]);
    });

    it('logs neither the bytes received nor the parser’s message, which can carry a caller’s token', async () => {
      const outcome = await slowClient({ origin, head: 'GET /\x01secret HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\r\n\r\n', deadlineInMs });
      const [line, ...more] = writtenAbout(outcome.localPort);
      expect(more).toEqual([]);
      expect(line).toContain('"code":"HPE_INVALID_URL"');
      expect(line).not.toMatch(/secret|payload|Bearer|Invalid|bytesParsed|rawPacket/);
    });

    it('answers headers over 16 KiB with 431 problem details and closes the connection', async () => {
      const outcome = await slowClient({ origin, head: `GET / HTTP/1.1\r\nHost: localhost\r\nX-Large: ${'b'.repeat(17 * 1024)}\r\n\r\n`, deadlineInMs });
      expect(problemOf(outcome, 'HTTP/1.1 431 Request Header Fields Too Large')).toEqual({
        type: 'https://keyless.dev/problems/headers-too-large',
        title: 'Request Header Fields Too Large',
        status: 431,
        detail: "The request's headers exceed 16 KiB: send fewer or shorter headers.",
      });
      expect(outcome.received).not.toMatch(/HPE_|bbbb/);
      expect(linesOf(outcome.localPort)).toEqual([expect.objectContaining({ level: 40, status: 431, kind: 'headers-too-large', code: 'HPE_HEADER_OVERFLOW' })]);
      expect(written.join('')).not.toContain('bbbb');
    });

    it('answers a client that trickles its headers past the headers timeout with 408 problem details and closes the connection', async () => {
      const outcome = await slowClient({ origin, head: 'GET / HTTP/1.1\r\nHost: localhost\r\n', trickle: 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', deadlineInMs });
      expect(problemOf(outcome, 'HTTP/1.1 408 Request Timeout')).toEqual({
        type: 'https://keyless.dev/problems/request-timeout',
        title: 'Request Timeout',
        status: 408,
        detail: 'The request did not arrive in time: send its headers within 300 ms and the whole request within 600 ms.',
      });
      expect(linesOf(outcome.localPort)).toEqual([expect.objectContaining({ level: 40, status: 408, kind: 'request-timeout', code: 'ERR_HTTP_REQUEST_TIMEOUT' })]);
    });
  });

  it('still serves a well-formed request', async () => {
    expect(await (await fetch(origin)).text()).toBe('ok');
  });
});

/** A test-only route that answers as it reads: its response begins before the request's body has arrived. */
@Controller()
class ProgressController {
  @Post('progress')
  progress(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write('receiving\n');
    request.resume().on('end', () => response.end('received\n'));
  }
}

// A service's HTTP server as the services build it: a Nest app on Express with the module `serviceModules` adds.
describe(HttpServerLimitsModule.name, () => {
  let app: INestApplication;
  let origin: string;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [{ module: HttpServerLimitsModule, providers: [{ provide: HTTP_SERVER_LIMITS, useValue: { headersTimeoutInMs: 300, requestTimeoutInMs: 600, keepAliveTimeoutInMs: 5_000 } }] }],
      controllers: [ProgressController],
    }).compile();
    app = moduleRef.createNestApplication();
    await app.listen(0, '127.0.0.1');
    useServiceLogger();
    origin = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`;
  });
  afterAll(() => app.close());

  it('logs one warn line when a request times out after its response began: method, path without the query, status sent, elapsed time, the client and the listener', async () => {
    const head = 'POST /progress?sig=secret HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\r\nContent-Type: application/octet-stream\r\nContent-Length: 4000\r\n\r\n';
    const outcome = await slowClient({ origin, head, trickle: 'a'.repeat(4000), deadlineInMs: 10_000 });
    // The client saw the response begin and the connection close: without the line, a network drop.
    expect(outcome.received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*receiving\n/);
    expect(outcome.received).not.toContain('received\n');
    const port = Number(new URL(origin).port);
    const [line, ...more] = linesOf(outcome.localPort);
    expect(more).toEqual([]);
    expect(line).toEqual(
      expect.objectContaining({
        level: 40,
        context: 'HttpParser',
        method: 'POST',
        path: '/progress',
        status: 200,
        code: 'ERR_HTTP_REQUEST_TIMEOUT',
        client: { address: '127.0.0.1', port: outcome.localPort },
        listener: { name: 'app', address: '127.0.0.1', port },
      }),
    );
    expect(line!.elapsedInMs).toBeGreaterThanOrEqual(600);
    expect(line!.message).toBe(
      `POST /progress cut off after 200 was sent, ${String(line!.elapsedInMs)} ms after its headers (ERR_HTTP_REQUEST_TIMEOUT) for 127.0.0.1:${outcome.localPort} on the app listener 127.0.0.1:${port}: the request was still arriving when Node gave up on it, so the connection was closed mid-response`,
    );
    expect(writtenAbout(outcome.localPort).join('')).not.toMatch(/secret|payload|Bearer|aaaa/);
  });
});

describe(refusalLog.name, () => {
  const refused = (remotePort: number): RefusedClientRequest => ({ kind: 'malformed-request', status: 400, code: 'HPE_INVALID_METHOD', remoteAddress: '::1', remotePort, localAddress: '::1', localPort: 8080 });

  beforeAll(useServiceLogger);
  beforeEach(() => written.splice(0));

  it('writes the lines of `refusalLogLines` through the service’s logger, within their bound', () => {
    const onRefused = refusalLog('health details', 2, () => 1_000_000);
    for (const port of [1, 2, 3, 4]) onRefused(refused(port));
    expect(written.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ level: 40, context: 'HttpParser', listener: { name: 'health details', address: '::1', port: 8080 }, client: { address: '::1', port: 1 } }),
      expect.objectContaining({ level: 40, context: 'HttpParser', client: { address: '::1', port: 2 }, message: expect.stringMatching(/further refusals on this listener are not logged/) }),
    ]);
  });
});
