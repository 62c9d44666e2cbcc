import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { slowClient, type SlowClientOutcome } from '@keyless/testing';
import { applyHttpServerLimits } from './http-server-limits.js';

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

    it('answers headers over 16 KiB with 431 problem details and closes the connection', async () => {
      const outcome = await slowClient({ origin, head: `GET / HTTP/1.1\r\nHost: localhost\r\nX-Large: ${'b'.repeat(17 * 1024)}\r\n\r\n`, deadlineInMs });
      expect(problemOf(outcome, 'HTTP/1.1 431 Request Header Fields Too Large')).toEqual({
        type: 'https://keyless.dev/problems/headers-too-large',
        title: 'Request Header Fields Too Large',
        status: 431,
        detail: "The request's headers exceed 16 KiB: send fewer or shorter headers.",
      });
      expect(outcome.received).not.toMatch(/HPE_|bbbb/);
    });

    it('answers a client that trickles its headers past the headers timeout with 408 problem details and closes the connection', async () => {
      const outcome = await slowClient({ origin, head: 'GET / HTTP/1.1\r\nHost: localhost\r\n', trickle: 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', deadlineInMs });
      expect(problemOf(outcome, 'HTTP/1.1 408 Request Timeout')).toEqual({
        type: 'https://keyless.dev/problems/request-timeout',
        title: 'Request Timeout',
        status: 408,
        detail: 'The request did not arrive in time: send its headers within 300 ms and the whole request within 600 ms.',
      });
    });
  });

  it('still serves a well-formed request', async () => {
    expect(await (await fetch(origin)).text()).toBe('ok');
  });
});
