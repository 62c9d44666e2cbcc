import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SignJWT } from 'jose';
import { serviceBusDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { HealthModule } from '@keyless/observability';
import { RecordingLogger, slowClient, waitFor, type RecordedLine, type SlowClientOutcome } from '@keyless/testing';
import type { DrainingExpressAdapter } from '../src/http/draining-express.adapter.js';
import { callerToken } from './support/caller-token.js';

interface RunningGateway {
  app: NestExpressApplication;
  url: string;
  logger: RecordingLogger;
}

// The gateway in-process with its whole HTTP pipeline (main.ts runs the same app), against a local Azure
// with the Service Bus (no recommendation or vision service runs: requests that get through time out).
describe('the gateway’s front door (host "gateway")', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  const gateways: RunningGateway[] = [];

  async function startGateway(settings: Record<string, string>): Promise<RunningGateway> {
    const extra = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', REQUEST_TIMEOUT_MS: '300', ...settings };
    Object.assign(process.env, extra);
    try {
      // Imported once the host's environment is exported: the app module validates it when it loads.
      const { createGatewayApp } = await import('../src/gateway.app.js');
      const logger = new RecordingLogger();
      const app = await createGatewayApp({ logger });
      await app.listen(0, '127.0.0.1');
      const gateway = { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`, logger };
      gateways.push(gateway);
      return gateway;
    } finally {
      for (const key of Object.keys(extra)) delete process.env[key];
    }
  }

  /** Polls `check` every 20 ms until it holds (the test's timeout bounds it). */
  async function until(check: () => boolean): Promise<void> {
    while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** A caller token from a host's identity endpoint, as the SDK would get it. */
  async function tokenFrom(host: string): Promise<string> {
    const hostEnv = test.azure.hostEnv(host);
    const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'api://keyless-gateway', client_id: hostEnv.AZURE_CLIENT_ID! });
    const response = await fetch(`${hostEnv.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': hostEnv.IDENTITY_HEADER! } });
    return ((await response.json()) as { access_token: string }).access_token;
  }

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [serviceBusDataPlane] });
    env = test.enterHost('gateway');
  });
  afterAll(async () => {
    for (const gateway of gateways) await gateway.app.close();
    await test?.stop();
  });

  describe('with a per-address limit of 20 requests a minute', () => {
    let gateway: RunningGateway;

    beforeAll(async () => {
      gateway = await startGateway({ ADDRESS_RATE_LIMIT_PER_MINUTE: '20' });
    });

    it('answers a flood of forged tokens with 429 before any signature check, whatever X-Forwarded-For claims', async () => {
      const { privateKey } = await (await import('jose')).generateKeyPair('RS256');
      const forged = await new SignJWT({ aud: 'api://keyless-gateway', tid: env.AZURE_TENANT_ID }).setProtectedHeader({ alg: 'RS256', kid: 'forged' }).setExpirationTime('1h').sign(privateKey);
      const statuses: number[] = [];
      let limited: Response | undefined;
      for (let i = 0; i < 30; i++) {
        // A spoofed client address per request: not trusted (TRUSTED_PROXY_HOPS is 0), so all count as one.
        const response = await fetch(`${gateway.url}/v1/products/p-1`, { headers: { authorization: `Bearer ${forged}`, 'x-forwarded-for': `203.0.113.${i}` } });
        statuses.push(response.status);
        if (response.status === 429) limited ??= response;
        else await response.body?.cancel();
      }
      expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
      expect(statuses.slice(20)).toEqual(Array(10).fill(429));
      expect(limited!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await limited!.json()).toMatchObject({ type: 'https://keyless.dev/problems/rate-limited', status: 429 });
      // Authentication logs every refusal: exactly the 20 that got through the address limit were checked.
      expect(gateway.logger.messages().filter((line) => line.startsWith('401 for GET /v1/products/p-1'))).toHaveLength(20);
      expect(gateway.logger.messages().filter((line) => line.startsWith('429 for '))).toHaveLength(1);
    });
  });

  describe('with limits on slow clients of 1 s for headers and 2 s for a whole request', () => {
    let gateway: RunningGateway;
    // Node's own limits held such a client 60 s (headers) and 300 s (a body), checked every 30 s: the deadline is far
    // below those and far above these.
    const deadlineInMs = 15_000;
    const statusLine = (received: string): string => received.split('\r\n')[0]!;
    /** The problem details of the one whole response a connection got before the gateway closed it. */
    const problemOf = (received: string): Record<string, unknown> => {
      const [head, body] = received.split('\r\n\r\n') as [string, string];
      expect(head.split('\r\n').slice(1)).toEqual(['Content-Type: application/problem+json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close']);
      return JSON.parse(body) as Record<string, unknown>;
    };
    /** The log lines about the refused connection from `clientPort` (no route or access line sees it: the parser refused it). */
    const refusalLinesOf = (clientPort: number | undefined): RecordedLine[] =>
      gateway.logger.lines.filter((line) => line.context === 'HttpParser' && (line.fields?.client as { port?: number } | undefined)?.port === clientPort);
    /** The one warn line of a refusal on a listener at `port`: what an operator whose client got the answer finds. */
    const expectRefusalLogged = (outcome: SlowClientOutcome, fields: Record<string, unknown>, listener = { name: 'app', port: Number(new URL(gateway.url).port) }): void => {
      expect(refusalLinesOf(outcome.localPort)).toEqual([
        {
          level: 'warn',
          context: 'HttpParser',
          message: expect.stringMatching(new RegExp(`^${String(fields.status)} .* for 127\\.0\\.0\\.1:${outcome.localPort} on the ${listener.name} listener 127\\.0\\.0\\.1:${listener.port}: `)),
          fields: { ...fields, client: { address: '127.0.0.1', port: outcome.localPort }, listener: { name: listener.name, address: '127.0.0.1', port: listener.port } },
        },
      ]);
    };

    beforeAll(async () => {
      gateway = await startGateway({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000', HEALTH_DETAILS_PORT: '0' });
    });

    it('answers 408 and closes the connection of a client that trickles its headers', async () => {
      const outcome = await slowClient({ origin: gateway.url, head: 'GET /v1/products/p-1 HTTP/1.1\r\nHost: localhost\r\n', trickle: 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 408 Request Timeout');
      expect(problemOf(outcome.received)).toEqual({
        type: 'https://keyless.dev/problems/request-timeout',
        title: 'Request Timeout',
        status: 408,
        detail: 'The request did not arrive in time: send its headers within 1 s and the whole request within 2 s.',
      });
      expectRefusalLogged(outcome, { status: 408, kind: 'request-timeout', code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    });

    it('answers 408 and closes the connection of a client that sends nothing after connecting', async () => {
      const outcome = await slowClient({ origin: gateway.url, deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 408 Request Timeout');
    });

    it('answers 408 and closes the connection of a client that trickles its body, before authentication reads it', async () => {
      const head = 'POST /v1/products HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"id":"';
      const outcome = await slowClient({ origin: gateway.url, head, trickle: 'p'.repeat(4000), deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 408 Request Timeout');
      expect(problemOf(outcome.received)).toMatchObject({ type: 'https://keyless.dev/problems/request-timeout', status: 408 });
      expect(outcome.openForInMs).toBeGreaterThanOrEqual(2000);
      expectRefusalLogged(outcome, { status: 408, kind: 'request-timeout', code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    });

    it('answers 431 to request headers over 16 KiB, before authentication, and keeps serving', async () => {
      const outcome = await slowClient({ origin: gateway.url, head: `GET /v1/products/p-1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.${'a'.repeat(17 * 1024)}\r\n\r\n`, deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expect(problemOf(outcome.received)).toMatchObject({ type: 'https://keyless.dev/problems/headers-too-large', status: 431, detail: "The request's headers exceed 16 KiB: send fewer or shorter headers." });
      expect((await fetch(`${gateway.url}/v1/products/p-1`)).status).toBe(401);
    });

    it('logs a 431 as one warn line with what an operator needs, and nothing of the token in the refused header', async () => {
      const outcome = await slowClient({ origin: gateway.url, head: `GET /v1/products/p-1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.${'s'.repeat(17 * 1024)}\r\n\r\n`, deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expectRefusalLogged(outcome, { status: 431, kind: 'headers-too-large', code: 'HPE_HEADER_OVERFLOW' });
      expect(JSON.stringify(gateway.logger.lines)).not.toMatch(/header\.payload|ssss/);
      expect(JSON.stringify(refusalLinesOf(outcome.localPort))).not.toMatch(/Bearer|Authorization/i);
    });

    it('answers a malformed request line with 400 problem details, without the parser’s words, and keeps serving', async () => {
      const outcome = await slowClient({ origin: gateway.url, head: 'GET /v1/products/a xxxx HTTP/1.1\r\nHost: localhost\r\n\r\n', deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 400 Bad Request');
      expect(problemOf(outcome.received)).toEqual({
        type: 'https://keyless.dev/problems/malformed-request',
        title: 'Bad Request',
        status: 400,
        detail: 'The request line or a header is not valid HTTP/1.1: send a well-formed request.',
      });
      expect(outcome.received).not.toMatch(/HPE_|Parse Error|Expected|xxxx/);
      expect((await fetch(`${gateway.url}/v1/products/p-1`)).status).toBe(401);
      expectRefusalLogged(outcome, { status: 400, kind: 'malformed-request', code: expect.stringMatching(/^HPE_/) });
      expect(JSON.stringify(refusalLinesOf(outcome.localPort))).not.toMatch(/Parse Error|Expected|xxxx/);
    });

    it('logs a malformed header as one warn line without the header’s value or the parser’s message', async () => {
      const outcome = await slowClient({ origin: gateway.url, head: 'GET /v1/products/p-1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer header.payload.signature\x01\r\n\r\n', deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 400 Bad Request');
      expectRefusalLogged(outcome, { status: 400, kind: 'malformed-request', code: 'HPE_INVALID_HEADER_TOKEN' });
      expect(JSON.stringify(gateway.logger.lines)).not.toMatch(/header\.payload/);
      expect(JSON.stringify(refusalLinesOf(outcome.localPort))).not.toMatch(/Bearer|Authorization|Invalid header/i);
    });

    it('holds the loopback details listener to the same limits, and answers it with problem details too', async () => {
      const health = gateway.app.get(HealthModule);
      const outcome = await slowClient({ origin: `http://127.0.0.1:${health.detailsPort}`, head: 'GET /health/ready HTTP/1.1\r\n', trickle: 'Host: localhost', deadlineInMs });
      expect(statusLine(outcome.received)).toBe('HTTP/1.1 408 Request Timeout');
      expect(problemOf(outcome.received)).toMatchObject({ type: 'https://keyless.dev/problems/request-timeout', status: 408 });
      expectRefusalLogged(outcome, { status: 408, kind: 'request-timeout', code: 'ERR_HTTP_REQUEST_TIMEOUT' }, { name: 'health details', port: health.detailsPort! });
    });
  });

  describe('with the default limits', () => {
    let gateway: RunningGateway;
    let token: string;

    beforeAll(async () => {
      gateway = await startGateway({ HEALTH_DETAILS_PORT: '0' });
      token = await tokenFrom('storefront');
    });

    const post = (body: FormData, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${gateway.url}/v1/images:analyze`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, ...headers } });
    const form = (fields: number, valueBytes: number, withImage = true): FormData => {
      const data = new FormData();
      if (withImage) data.append('image', new Blob([Buffer.from('89504e470d0a1a0a', 'hex')], { type: 'image/png' }), 'a.png');
      for (let i = 0; i < fields; i++) data.append(`field${i}`, 'x'.repeat(valueBytes));
      return data;
    };

    it('challenges a request without a token with a bare Bearer, and one with a refused token with error="invalid_token" (RFC 6750)', async () => {
      const anonymous = await fetch(`${gateway.url}/v1/products/p-1`);
      const refused = await fetch(`${gateway.url}/v1/products/p-1`, { headers: { authorization: `Bearer ${token}x` } });
      expect([anonymous.status, anonymous.headers.get('www-authenticate'), refused.status, refused.headers.get('www-authenticate')]).toEqual([401, 'Bearer', 401, 'Bearer error="invalid_token"']);
    });

    it('refuses a request with two Authorization headers, even when the first holds a valid token, and logs why', async () => {
      // Node's HTTP server used to keep the first of the two and drop the other: a proxy or log in front that reads
      // the other one saw another caller than the gateway served.
      const status = await new Promise<number>((resolve, reject) => {
        const request = httpRequest(`${gateway.url}/v1/products/p-1`, (response) => {
          response.resume();
          resolve(response.statusCode!);
        });
        request.setHeader('authorization', [`Bearer ${token}`, 'Bearer another-token']);
        request.on('error', reject).end();
      });
      expect(status).toBe(401);
      expect(gateway.logger.messages()).toEqual(expect.arrayContaining([expect.stringMatching(/^401 for GET \/v1\/products\/p-1: the request has more than one Authorization header/)]));
    });

    it('refuses a caller token without exp with 401 problem details', async () => {
      const eternal = await callerToken(test, ['Catalog.Read'], 'o-1', { expires: false });
      const response = await fetch(`${gateway.url}/v1/products/p-1`, { headers: { authorization: `Bearer ${eternal}` } });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ type: 'https://keyless.dev/problems/unauthenticated', status: 401 });
      expect(gateway.logger.messages()).toEqual(expect.arrayContaining([expect.stringMatching(/^401 for GET \/v1\/products\/p-1: the token's "exp" claim is not accepted/)]));
    });

    describe('when a JSON body is valid JSON but not an object', () => {
      it('answers 400 validation naming the body, not "not valid JSON"', async () => {
        for (const [path, body] of [['/v1/recommendations', 'null'], ['/v1/recommendations', '3'], ['/v1/images:analyze', '"https://example.com/a.png"']] as const) {
          const response = await fetch(`${gateway.url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
          const problem = (await response.json()) as { type: string; errors?: { field: string }[] };
          expect([path, body, response.status, problem.type, problem.errors?.map((e) => e.field)]).toEqual([path, body, 400, 'https://keyless.dev/problems/validation', ['body']]);
        }
      });
    });

    describe('when a multipart upload is too big or has too many parts', () => {
      it('refuses 40 fields of 1 MB with 413 before reading them', async () => {
        const response = await post(form(40, 1024 * 1024));
        expect(response.status).toBe(413);
        expect(await response.json()).toMatchObject({ type: 'https://keyless.dev/problems/body-too-large', status: 413 });
      });

      it('refuses a field value over 1 KiB with 413, and too many fields with 400', async () => {
        const long = await post(form(1, 2048));
        expect(long.status).toBe(413);
        const many = await post(form(10, 10));
        expect(many.status).toBe(400);
        expect(await many.json()).toMatchObject({ type: 'https://keyless.dev/problems/malformed-body', detail: expect.stringContaining('Too many') });
      });

      it('refuses a form file that is not an image with 415, before the bus', async () => {
        const data = new FormData();
        data.append('image', new Blob(['hello'], { type: 'text/plain' }), 'a.txt');
        const response = await post(data);
        expect(response.status).toBe(415);
        expect(await response.json()).toMatchObject({ type: 'https://keyless.dev/problems/unsupported-media-type', detail: 'The uploaded file is "text/plain", not an image.' });
      });

      it('refuses more than one file with 400', async () => {
        const twice = form(0, 0);
        twice.append('image', new Blob([Buffer.from('x')], { type: 'image/png' }), 'b.png');
        expect((await post(twice)).status).toBe(400);
      });

      it('lets a form with the image and a few short fields through (to the bus, where no vision service answers)', async () => {
        const response = await post(form(2, 100));
        expect(response.status).toBe(504);
      });
    });

    describe('when Service Bus takes an upsert’s event but does not commit it (servicebus-store stall)', () => {
      afterAll(() => test.azure.faults.clear());

      it('answers 503 messaging-unavailable with Retry-After once REQUEST_TIMEOUT_MS has passed, not after the SDK’s retries', async () => {
        const writer = await callerToken(test, ['Catalog.Write'], 'o-writer');
        await test.azure.faults.set('servicebus-store', { mode: 'stall' });
        const response = await fetch(`${gateway.url}/v1/products/held-upsert`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'Lamp', description: 'A lamp', category: 'home', price: 10, available: true }),
        });
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(await response.json()).toMatchObject({
          type: 'https://keyless.dev/problems/messaging-unavailable',
          status: 503,
          detail: 'Service Bus did not confirm the change in time; it may still be applied, and retrying it is safe.',
        });
      });
    });

    describe('health', () => {
      it('answers /health/ready publicly with only up or down per check', async () => {
        const deadline = Date.now() + 10_000;
        let response = await fetch(`${gateway.url}/health/ready`);
        while (response.status !== 200 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          response = await fetch(`${gateway.url}/health/ready`);
        }
        const text = await response.text();
        expect(JSON.parse(text)).toEqual({
          status: 'ok',
          info: { identity: { status: 'up' }, servicebus: { status: 'up' } },
          error: {},
          details: { identity: { status: 'up' }, servicebus: { status: 'up' } },
        });
        for (const secret of [env.AZURE_CLIENT_ID!, env.IDENTITY_ENDPOINT!, 'replies', 'expiresOn', 'sessionId', 'gateway-']) expect(text).not.toContain(secret);
      });

      it('serves the details on a loopback-only listener', async () => {
        const health = gateway.app.get(HealthModule);
        const server = (health as unknown as { server: { address(): AddressInfo } }).server;
        expect(server.address().address).toBe('127.0.0.1');
        const details = await (await fetch(`http://127.0.0.1:${health.detailsPort}/health/ready`)).text();
        expect(details).toContain(env.AZURE_CLIENT_ID!);
        expect(details).toContain('replySession');
        expect(gateway.logger.messages()).toEqual(expect.arrayContaining([expect.stringMatching(/^readiness details on http:\/\/127\.0\.0\.1:\d+\/health\/ready/)]));
      });

      describe('when Service Bus drops every connection', () => {
        afterAll(async () => {
          await test.azure.faults.clear();
          await waitFor('the gateway ready again', async () => (await fetch(`${gateway.url}/health/ready`)).status === 200, 60_000, 200);
        }, 70_000);

        it('answers 503 naming the check that is down, in the same shape as when ready, with no error line per probe', async () => {
          // A loss is logged only by a service that was ready: this test does not rely on an earlier one for that.
          await waitFor('the gateway ready', async () => (await fetch(`${gateway.url}/health/ready`)).status === 200, 30_000, 100);
          await test.azure.faults.set('servicebus-connections', { mode: 'drop' });
          const down = await waitFor('a 503 from /health/ready', async () => {
            const response = await fetch(`${gateway.url}/health/ready`);
            return response.status === 503 ? response : (await response.body?.cancel(), undefined);
          }, 30_000, 100);
          expect(down.headers.get('content-type')).toMatch(/^application\/json/);
          expect(down.headers.get('cache-control')).toContain('no-store');
          expect(await down.json()).toEqual({
            status: 'error',
            info: { identity: { status: 'up' } },
            error: { servicebus: { status: 'down' } },
            details: { identity: { status: 'up' }, servicebus: { status: 'down' } },
          });
          for (let probe = 0; probe < 3; probe++) expect((await fetch(`${gateway.url}/health/ready`)).status).toBe(503);
          // Probes come every few seconds during an outage: the log says readiness was lost, once, not an error per probe.
          expect(gateway.logger.lines.filter((line) => line.level === 'error' && line.message.includes('/health/ready'))).toEqual([]);
          expect(gateway.logger.messages('warn').filter((line) => line.startsWith('readiness lost: servicebus down'))).toHaveLength(1);
        }, 70_000);
      });
    });
  });

  describe('when it is built', () => {
    it('leaves the shutdown signals to runService, whose shutdown writes every queued log line and exits 0', async () => {
      // Nest takes a signal only once: hooks registered here would re-raise SIGTERM after closing, killing the
      // process before pino's asynchronous stdout is flushed (and before --cpu-prof writes its profile).
      const signals = ['SIGTERM', 'SIGINT'] as const;
      const before = signals.map((signal) => process.listenerCount(signal));
      await startGateway({});
      expect(signals.map((signal) => process.listenerCount(signal))).toEqual(before);
    });
  });

  describe('when it shuts down while callers keep their keep-alive connections busy', () => {
    it('answers the requests in flight with Connection: close, and finishes closing', async () => {
      const gateway = await startGateway({ REQUEST_TIMEOUT_MS: '2000' });
      gateways.splice(gateways.indexOf(gateway), 1);
      const adapter = gateway.app.getHttpAdapter() as unknown as DrainingExpressAdapter;
      const token = await tokenFrom('storefront');
      // Callers that never pause: each sends its next request on the same connection as soon as the last is
      // answered. No recommendation service runs, so every request waits for its timeout: the connections are
      // busy, never idle, when the shutdown begins.
      const answers: { status: number; connection: string | null }[] = [];
      const callers = Array.from({ length: 3 }, async () => {
        for (;;) {
          try {
            const response = await fetch(`${gateway.url}/v1/products/p-1`, { headers: { authorization: `Bearer ${token}` } });
            await response.arrayBuffer();
            answers.push({ status: response.status, connection: response.headers.get('connection') });
          } catch {
            return; // the connection was closed and the listener refuses new ones
          }
        }
      });
      await until(() => adapter.requestsInFlight === 3);

      // Without draining, server.close() waits for these connections for ever.
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('app.close() did not finish in 20 s: busy keep-alive connections hold it')), 20_000);
      });
      try {
        await Promise.race([gateway.app.close(), hung]);
      } finally {
        clearTimeout(timer);
        (gateway.app.getHttpServer() as Server).closeAllConnections();
      }
      await Promise.all(callers);
      expect(answers.length).toBeGreaterThanOrEqual(3);
      for (const answer of answers) {
        expect([503, 504]).toContain(answer.status);
        expect(answer.connection).toBe('close');
      }
    });
  });
});
