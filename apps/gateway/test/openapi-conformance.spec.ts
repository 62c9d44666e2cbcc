import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RpcException } from '@nestjs/microservices';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { gatewayAppRoles, queues, type ParsedRequestOf, type ReplyOf } from '@keyless/contracts';
import { AuthModule, AzureClientFactory } from '@keyless/auth';
import { serviceBusDataPlane } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { MessagingModule, OnRequest, ServiceBusServer } from '@keyless/messaging';
import { MemoryIdempotencyStore } from '@keyless/messaging/testing';
import { RecordingLogger, slowClient } from '@keyless/testing';
import { callerToken } from './support/caller-token.js';

/** A problem response's schema: one, or (a status the gateway and Node's HTTP parser both answer) either of two. */
interface ResponseSchema {
  $ref?: string;
  anyOf?: { $ref: string }[];
}
interface Response {
  description: string;
  content?: Record<string, { schema?: ResponseSchema }>;
  headers?: Record<string, unknown>;
}
interface Operation {
  responses: Record<string, Response>;
  parameters?: { name: string; in: string; required?: boolean; schema?: Record<string, unknown> }[];
  security?: Record<string, string[]>[];
  'x-keyless-app-roles'?: string[];
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { required: string[] }>; securitySchemes: Record<string, { flows: { clientCredentials: { scopes: Record<string, string> } } }> };
}

/** Released when the suite ends: a handler that waits for it never answers in time (the gateway's 504). */
let release: () => void = () => undefined;
const never = new Promise<void>((resolve) => (release = resolve));

/**
 * Stands in for the recommendation and vision services on their request queues, through the real Service Bus
 * transport: the id, query or URL says which failure to answer with (`missing`, `broken`, `busy`, `slow`).
 */
function failureFor(key: string | undefined): Promise<never> {
  if (key === 'missing') throw new RpcException({ code: 'not-found', reason: 'product-not-found', message: 'No product "missing".' });
  if (key === 'broken') throw new RpcException({ code: 'internal', message: 'the handler failed' });
  if (key === 'busy') throw new RpcException({ code: 'dependency-unavailable', message: 'Azure OpenAI answered 429' });
  return never.then(() => {
    throw new RpcException({ code: 'internal', message: 'released at the end of the suite' });
  });
}

@Controller()
class RecommendationStandIn {
  @OnRequest('recommendation.get-product')
  getProduct({ id }: ParsedRequestOf<'recommendation.get-product'>): Promise<ReplyOf<'recommendation.get-product'>> {
    // `found`: a product whose view stays the same from request to request (what a conditional GET needs).
    if (id === 'found') {
      const product = { id, name: 'Lamp', description: '', category: 'home', price: 10, available: true };
      return Promise.resolve({ product, vision: null, indexing: { state: 'pending-vision', updatedAt: '2026-01-01T00:00:00.000Z' } });
    }
    return failureFor(id);
  }
  @OnRequest('recommendation.similar-products')
  similar({ productId }: ParsedRequestOf<'recommendation.similar-products'>): Promise<never> {
    return failureFor(productId);
  }
  @OnRequest('recommendation.recommend')
  recommend({ query }: ParsedRequestOf<'recommendation.recommend'>): Promise<never> {
    return failureFor(query);
  }
}

@Controller()
class VisionStandIn {
  @OnRequest('vision.analyze-image')
  analyze(request: ParsedRequestOf<'vision.analyze-image'>): Promise<never> {
    return failureFor('url' in request ? new URL(request.url).hostname.split('.')[0] : undefined);
  }
}

/**
 * A Nest service on one request queue, wired as apps/recommendation and apps/vision are (identity from the host env),
 * with the idempotency store's in-memory double instead of their PostgreSQL store (one instance, no database here).
 */
async function startStandIn(queue: string, controller: new (...args: never[]) => unknown, env: Record<string, string>): Promise<INestApplication> {
  class StandInModule {}
  Module({
    imports: [
      AuthModule.forRoot({ clientId: env.AZURE_CLIENT_ID!, audiences: ['serviceBus'], resources: { serviceBus: { fullyQualifiedNamespace: env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE! } } }),
      MessagingModule.forRootAsync({
        inject: [AzureClientFactory],
        useFactory: (clients: AzureClientFactory) => ({ client: clients.create('serviceBus'), server: { requests: { queue, replyQueues: [queues.replies] }, idempotencyStore: new MemoryIdempotencyStore() } }),
      }),
    ],
    controllers: [controller],
  })(StandInModule);
  const app = await NestFactory.create(StandInModule, { logger: false, abortOnError: false });
  app.connectMicroservice({ strategy: app.get(ServiceBusServer) }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  return app;
}

/** An operation of the gateway, and how to send it a request whose id, query or image host is `key`. */
interface Route {
  operation: string;
  method: string;
  path: (key: string) => string;
  body?: string | ((key: string) => string);
  contentType?: string;
}

/** What the gateway answered. */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request of a probe; `status` and `type` are what the gateway must answer. */
interface Probe {
  operation: string;
  name: string;
  gateway: 'main' | 'limited' | 'keyless' | 'slow' | 'impatient';
  method: string;
  path: string;
  roles?: string[] | 'none';
  /** The caller's principal id (the per-caller limit counts per principal). **Default**: `caller`. */
  caller?: string;
  body?: string | Uint8Array;
  contentType?: string;
  contentEncoding?: string;
  ifNoneMatch?: string;
  /** A header of this many bytes more than the request would have (`X-Padding`). **Default**: none. */
  paddingBytes?: number;
  /** Sends the headers and `body` but declares one byte more, and never sends it: the request never arrives whole. */
  incomplete?: boolean;
  /**
   * Sent over a raw socket, as node:http would not send it (no body): `header`, a header with a control character in
   * its value; `chunk-extensions`, a chunked body whose first chunk's extensions are over Node's 16 KiB. **Default**: none.
   */
  malformed?: 'header' | 'chunk-extensions';
  status: number;
  type: string;
}

// The gateway's OpenAPI document against what the gateway answers: in-process with its whole HTTP pipeline
// (main.ts runs the same app), the local Azure's Entra and Service Bus, and stand-ins for the services behind it
// on their request queues through the real transport.
describe('the gateway’s OpenAPI document (/docs/openapi.json)', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let document: OpenApiDocument;
  const apps: INestApplication[] = [];
  const urls: Record<Probe['gateway'], string> = { main: '', limited: '', keyless: '', slow: '', impatient: '' };
  const answered: { operation: string; status: number }[] = [];

  async function startGateway(settings: Record<string, string>): Promise<string> {
    const extra = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', REQUEST_TIMEOUT_MS: '5000', ...settings };
    Object.assign(process.env, extra);
    try {
      const { createGatewayApp } = await import('../src/gateway.app.js');
      const app: NestExpressApplication = await createGatewayApp({ logger: new RecordingLogger() });
      await app.listen(0, '127.0.0.1');
      apps.push(app);
      return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    } finally {
      for (const key of Object.keys(extra)) delete process.env[key];
    }
  }

  /**
   * Sends a probe over node:http (fetch sends no body with a GET; the gateway's body parsers read one all the same), or
   * a malformed one over a raw socket ({@link sendMalformed}).
   */
  async function send(probe: Probe): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (probe.roles !== 'none') headers.authorization = `Bearer ${await callerToken(test, probe.roles ?? Object.keys(gatewayAppRoles), probe.caller ?? 'caller')}`;
    if (probe.contentType) headers['content-type'] = probe.contentType;
    if (probe.contentEncoding) headers['content-encoding'] = probe.contentEncoding;
    if (probe.ifNoneMatch) headers['if-none-match'] = probe.ifNoneMatch;
    if (probe.paddingBytes) headers['x-padding'] = 'p'.repeat(probe.paddingBytes);
    if (probe.body !== undefined) headers['content-length'] = String(Buffer.byteLength(probe.body) + (probe.incomplete ? 1 : 0));
    const answer = probe.malformed ? await sendMalformed(probe, headers) : await new Promise<Answer>((resolve, reject) => {
      const outgoing = request(`${urls[probe.gateway]}${probe.path}`, { method: probe.method, headers }, (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => resolve({ status: incoming.statusCode!, headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8') }));
        incoming.on('error', reject);
      });
      outgoing.on('error', reject);
      if (probe.incomplete) outgoing.write(probe.body ?? '');
      else outgoing.end(probe.body);
    });
    answered.push({ operation: probe.operation, status: answer.status });
    return answer;
  }

  /** Sends a probe's request line and headers over a raw socket, with its malformation, and reads the answer until the gateway closes. */
  async function sendMalformed(probe: Probe, headers: Record<string, string>): Promise<Answer> {
    const lines = [`${probe.method} ${probe.path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    const head =
      probe.malformed === 'header'
        ? `${[...lines, 'X-Note: a\x01b'].join('\r\n')}\r\n\r\n`
        : `${[...lines, 'Transfer-Encoding: chunked'].join('\r\n')}\r\n\r\n1;${'x'.repeat(17 * 1024)}\r\n`;
    // In one write: the parser reaches the chunk extensions in the read that completes the headers, before a route could
    // begin a response (a refusal after that is a closed connection without a word).
    const { received } = await slowClient({ origin: urls[probe.gateway], head, deadlineInMs: 10_000 });
    const [top = '', ...rest] = received.split('\r\n\r\n');
    const [statusLine = '', ...headerLines] = top.split('\r\n');
    return {
      status: Number(statusLine.split(' ')[1]),
      headers: Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()])),
      body: rest.join('\r\n\r\n'),
    };
  }

  /**
   * The required members `body` lacks for each schema the documented `response` admits (its `$ref`, or each of its
   * `anyOf`), as `Schema.member`: none when one of those schemas has every member it requires.
   */
  function unmetRequirements(response: Response | undefined, body: Record<string, unknown>): string[] {
    const schema = response?.content?.['application/problem+json']?.schema;
    const names = (schema?.anyOf ?? (schema?.$ref ? [{ $ref: schema.$ref }] : [])).map(({ $ref }) => $ref.split('/').pop()!);
    if (names.length === 0) return ['no application/problem+json schema'];
    const misses = names.map((name) => document.components.schemas[name]!.required.filter((member) => !(member in body)).map((member) => `${name}.${member}`));
    return misses.some((missing) => missing.length === 0) ? [] : misses.flat();
  }

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [serviceBusDataPlane] });
    env = test.enterHost('gateway');
    apps.push(await startStandIn(queues.recommendationRequests, RecommendationStandIn, env));
    apps.push(await startStandIn(queues.visionRequests, VisionStandIn, env));
    // Headroom for every request a stand-in answers: on a loaded 2-core machine (a whole `nx test gateway` run beside
    // other work) a first request over the bus took over 3 s and one answered at once once took over 5 s (a 504 for a
    // 404). Only the gateway that times out on purpose waits briefly.
    urls.main = await startGateway({ REQUEST_TIMEOUT_MS: '30000' });
    urls.impatient = await startGateway({ REQUEST_TIMEOUT_MS: '2000' });
    urls.limited = await startGateway({ RATE_LIMIT_PER_MINUTE: '1' });
    // Tenant keys that cannot be fetched: a closed port on the loopback.
    urls.keyless = await startGateway({ AZURE_AUTHORITY_HOST: 'http://127.0.0.1:9' });
    // Limits on slow clients short enough for a probe to wait them out.
    urls.slow = await startGateway({ HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_REQUEST_TIMEOUT_MS: '1000' });
    // The probes answered through the bus start once the gateway holds its reply session and its Service Bus links.
    const deadline = Date.now() + 60_000;
    while ((await fetch(`${urls.main}/health/ready`)).status !== 200) {
      if (Date.now() > deadline) throw new Error('the gateway was not ready within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    document = (await (await fetch(`${urls.main}/docs/openapi.json`)).json()) as OpenApiDocument;
    // A local Azure, two services and five gateways in one process: over 30 s on a loaded 2-core machine.
  }, 120_000);
  afterAll(async () => {
    release();
    for (const app of apps.reverse()) await app.close();
    await test?.stop();
  });

  it('documents what the health routes answer: their bodies, their statuses, and that no cache may keep them', () => {
    const live = document.paths['/health/live']!.get!;
    const ready = document.paths['/health/ready']!.get!;
    expect(live.responses['200']!.content).toEqual({ 'application/json': { schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } } });
    for (const response of [live.responses['200']!, ready.responses['200']!, ready.responses['503']!]) {
      expect(response.headers?.['Cache-Control']).toMatchObject({ description: expect.stringContaining('no-store') });
    }
  });

  it('answers the health routes as documented: the body and Cache-Control', async () => {
    const live = await fetch(`${urls.main}/health/live`);
    expect([live.status, await live.json(), live.headers.get('cache-control')]).toEqual([200, { status: 'ok' }, 'no-cache, no-store, must-revalidate']);
    expect((await fetch(`${urls.main}/health/ready`)).headers.get('cache-control')).toBe('no-cache, no-store, must-revalidate');
  });

  /** The documented operations (`PUT /v1/products/{id}`), without the public health routes. */
  const operations = (): [string, Operation][] =>
    Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).filter(([, op]) => op['x-keyless-app-roles']).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, Operation]));

  const product = JSON.stringify({ name: 'Lamp', description: 'A lamp', category: 'home', price: 10, available: true });
  const routes: Route[] = [
    { operation: 'PUT /v1/products/{id}', method: 'PUT', path: (id: string) => `/v1/products/${id}`, body: product, contentType: 'application/json' },
    { operation: 'GET /v1/products/{id}', method: 'GET', path: (id: string) => `/v1/products/${id}` },
    { operation: 'GET /v1/products/{id}/similar', method: 'GET', path: (id: string) => `/v1/products/${id}/similar` },
    { operation: 'POST /v1/recommendations', method: 'POST', path: () => '/v1/recommendations', body: (q: string) => JSON.stringify({ viewedProductIds: [], query: q }), contentType: 'application/json' },
    { operation: 'POST /v1/images:analyze', method: 'POST', path: () => '/v1/images:analyze', body: (h: string) => JSON.stringify({ url: `https://${h}.example.com/a.png` }), contentType: 'application/json' },
  ];

  /** A request of a route whose id, query or image host is `key` (what the stand-ins answer by). */
  function probeOf(route: Route, name: string, key: string, status: number, type: string, extra: Partial<Probe> = {}): Probe {
    const body = typeof route.body === 'function' ? route.body(key) : route.body;
    return {
      operation: route.operation,
      name,
      gateway: 'main',
      method: route.method,
      path: route.path(key),
      ...(body !== undefined ? { body, contentType: route.contentType! } : {}),
      status,
      type,
      ...extra,
    };
  }

  /** The probes of one route: a request that draws each problem status the route can answer (429: its own test). */
  function probesOf(route: Route): Probe[] {
    const base = (name: string, key: string, status: number, type: string, extra: Partial<Probe> = {}): Probe => probeOf(route, name, key, status, type, extra);
    const probes: Probe[] = [
      base('an invalid path id or body', 'not a valid id!', 400, 'validation', route.method === 'POST' ? { body: '{"unexpected": true}', contentType: 'application/json' } : {}),
      base('a body that is not JSON', 'p-1', 400, 'malformed-body', { body: '{', contentType: 'application/json' }),
      ...(route.path('x') === route.path('y') ? [] : [base('a path id that is not valid percent-encoding', '%E0%A4%A', 400, 'validation')]),
      base('a body that does not decompress', 'p-1', 400, 'malformed-body', { body: 'not brotli', contentType: 'application/json', contentEncoding: 'br' }),
      base('no token', 'p-1', 401, 'unauthenticated', { roles: 'none' }),
      base('a token without the route’s role', 'p-1', 403, 'forbidden', { roles: [] }),
      base('a JSON body over 64 KB', 'p-1', 413, 'body-too-large', { body: JSON.stringify({ pad: 'x'.repeat(70_000) }), contentType: 'application/json' }),
      base('a JSON body in a charset the gateway does not read', 'p-1', 415, 'unsupported-media-type', { body: '{}', contentType: 'application/json; charset=latin1' }),
      base('a JSON body in UTF-7 (markup that filters reading the bytes miss)', 'p-1', 415, 'unsupported-media-type', { body: '+AHsAfQ-', contentType: 'application/json; charset=utf-7' }),
      base('a JSON body in UTF-16', 'p-1', 415, 'unsupported-media-type', { body: '{}', contentType: 'application/json; charset=utf-16' }),
      base('a body in a Content-Encoding the gateway does not read', 'p-1', 415, 'unsupported-media-type', { body: '{}', contentType: 'application/json', contentEncoding: 'compress' }),
      base('tenant keys that cannot be fetched', 'p-1', 503, 'authentication-unavailable', { gateway: 'keyless' }),
      // Answered by Node's HTTP parser, before the gateway reads the request (its body included, an operation without one too).
      base('a request whose body never arrives whole', 'p-1', 408, 'request-timeout', { gateway: 'slow', body: '{', contentType: 'application/json', incomplete: true }),
      base('headers over 16 KiB', 'p-1', 431, 'headers-too-large', { paddingBytes: 17 * 1024, body: undefined }),
      base('a header that is not valid HTTP/1.1', 'p-1', 400, 'malformed-request', { malformed: 'header', body: undefined }),
      base('chunk extensions over 16 KiB', 'p-1', 413, 'chunk-extensions-too-large', { malformed: 'chunk-extensions', body: undefined }),
    ];
    if (route.operation !== 'PUT /v1/products/{id}') {
      probes.push(
        base('a service that fails', 'broken', 502, 'downstream-error'),
        base('a service whose dependency is down', 'busy', 503, 'dependency-unavailable'),
        base('a service that does not answer in time', 'slow', 504, 'downstream-timeout', { gateway: 'impatient' }),
      );
    }
    if (['GET /v1/products/{id}', 'GET /v1/products/{id}/similar', 'POST /v1/recommendations'].includes(route.operation)) probes.push(base('an unknown product', 'missing', 404, 'not-found'));
    if (route.operation === 'GET /v1/products/{id}/similar') {
      // The documented `limit` is an integer: text Number() would read as one (0x3 as 3) is no such thing.
      probes.push(base('a limit not in decimal digits', 'p-1', 400, 'validation', { path: `${route.path('p-1')}?limit=0x3` }));
    }
    if (['PUT /v1/products/{id}', 'POST /v1/recommendations'].includes(route.operation)) {
      // What `curl -d` sends without a content type: a form, which a JSON operation does not read.
      probes.push(base('a form instead of JSON', 'p-1', 415, 'unsupported-media-type', { body: 'name=Lamp', contentType: 'application/x-www-form-urlencoded' }));
    }
    if (route.operation === 'POST /v1/images:analyze') {
      const form = '--b\r\nContent-Disposition: form-data; name="caption"\r\n\r\na lamp\r\n--b--\r\n';
      probes.push(
        base('a text body', 'p-1', 415, 'unsupported-media-type', { body: 'hello', contentType: 'text/plain' }),
        // The document's multipart body requires the `image` file: a form without it is an invalid field, not a media type.
        base('a form without the image file', 'p-1', 400, 'validation', { body: form, contentType: 'multipart/form-data; boundary=b' }),
        // The document's JSON body is `{"url": …}` only.
        base('JSON with an inline image', 'p-1', 400, 'validation', { body: JSON.stringify({ imageBase64: 'iVBORw0KGgo=', contentType: 'image/png' }), contentType: 'application/json' }),
      );
    }
    return probes;
  }

  it('documents every operation with the problem+json schema for each error status and the Entra scheme with the app roles', () => {
    const schemes = document.components.securitySchemes;
    expect(Object.keys(schemes.entra!.flows.clientCredentials.scopes).sort()).toEqual(Object.keys(gatewayAppRoles).sort());
    expect(document.components.schemas.ProblemDetails!.required).toEqual(['type', 'title', 'status', 'instance']);
    expect(document.components.schemas.ParserProblemDetails!.required).toEqual(['type', 'title', 'status', 'detail']);
    expect(operations().map(([name]) => name).sort()).toEqual(routes.map((route) => route.operation).sort());
    const undescribed = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, op]) => Object.entries(op.responses).filter(([, response]) => !response.description).map(([status]) => `${method} ${path} ${status}`)),
    );
    expect(undescribed).toEqual([]);
    for (const [, operation] of operations()) {
      expect(operation.security).toEqual([...operation['x-keyless-app-roles']!.map((role) => ({ entra: [role] })), { bearer: [] }]);
      for (const [status, response] of Object.entries(operation.responses).filter(([status]) => Number(status) >= 400)) {
        expect([status, Object.keys(response.content ?? {})]).toEqual([status, ['application/problem+json']]);
      }
    }
  });

  it('documents 408 and 431 on every operation, the public health routes included, with the parser’s problem schema and the setting that bounds each', () => {
    const all = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as const));
    expect(all.map(([name]) => name)).toEqual(expect.arrayContaining(['GET /health/live', 'GET /health/ready']));
    for (const [name, operation] of all) {
      const refusals = [operation.responses['408'], operation.responses['431']].map((response) => [name, response?.content?.['application/problem+json']?.schema?.$ref]);
      expect(refusals).toEqual([name, name].map((n) => [n, '#/components/schemas/ParserProblemDetails']));
      expect(operation.responses['408']!.description).toMatch(/`HTTP_HEADERS_TIMEOUT_MS`.*`HTTP_REQUEST_TIMEOUT_MS`.*`request-timeout`/s);
      expect(operation.responses['431']!.description).toMatch(/16 KiB.*`headers-too-large`/s);
    }
  });

  it('documents the 400 and 413 of Node’s HTTP parser beside the gateway’s own: either schema where the gateway answers them too, the parser’s alone on the health routes', () => {
    const all = Object.entries(document.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as const));
    const either = { anyOf: [{ $ref: '#/components/schemas/ProblemDetails' }, { $ref: '#/components/schemas/ParserProblemDetails' }] };
    const documented = all.map(([name, operation]) => ({
      name,
      schemas: [operation.responses['400'], operation.responses['413']].map((response) => response?.content?.['application/problem+json']?.schema),
      descriptions: [operation.responses['400']?.description, operation.responses['413']?.description],
    }));
    expect(documented).toEqual(
      all.map(([name, operation]) =>
        operation['x-keyless-app-roles']
          ? {
              name,
              schemas: [either, either],
              // Which problem types come in which schema: the gateway's first, then the parser's.
              descriptions: [
                expect.stringMatching(/^From the gateway \(`ProblemDetails`\): .*`validation`.* From Node's HTTP parser \(`ParserProblemDetails`\), .*no `instance`.*`malformed-request`/s),
                expect.stringMatching(/^From the gateway \(`ProblemDetails`\): .*`body-too-large`.* From Node's HTTP parser \(`ParserProblemDetails`\), .*no `instance`.*16 KiB.*`chunk-extensions-too-large`/s),
              ],
            }
          : {
              name,
              schemas: [{ $ref: '#/components/schemas/ParserProblemDetails' }, { $ref: '#/components/schemas/ParserProblemDetails' }],
              descriptions: [expect.stringMatching(/^The request line or a header is not valid HTTP\/1\.1.*Problem types: `malformed-request`\.$/s), expect.stringMatching(/Problem types: `chunk-extensions-too-large`\.$/)],
            },
      ),
    );
  });

  it('answers a malformed request and chunk extensions over 16 KiB on a health route as its documented 400 and 413', async () => {
    const live = document.paths['/health/live']!.get!;
    const answers = [];
    for (const [malformed, status, type] of [['header', 400, 'malformed-request'], ['chunk-extensions', 413, 'chunk-extensions-too-large']] as const) {
      const answer = await sendMalformed({ operation: 'GET /health/live', name: malformed, gateway: 'main', method: 'GET', path: '/health/live', malformed, status, type }, {});
      const body = JSON.parse(answer.body || '{}') as Record<string, unknown>;
      const response = live.responses[answer.status];
      answers.push({ status: answer.status, type: body.type, typeDocumented: response?.description.includes(`\`${type}\``) ?? false, missing: unmetRequirements(response, body) });
    }
    expect(answers).toEqual([
      { status: 400, type: 'https://keyless.dev/problems/malformed-request', typeDocumented: true, missing: [] },
      { status: 413, type: 'https://keyless.dev/problems/chunk-extensions-too-large', typeDocumented: true, missing: [] },
    ]);
  });

  it('documents the similar-products query as the gateway reads it: a whole-number limit with its bounds, a price', () => {
    const query = findOperation('GET /v1/products/{id}/similar').parameters!.filter((parameter) => parameter.in === 'query');
    expect(Object.fromEntries(query.map(({ name, schema, required }) => [name, { schema, required }]))).toEqual({
      limit: { schema: { default: 10, type: 'integer', minimum: 1, maximum: 50 }, required: false },
      category: { schema: expect.objectContaining({ type: 'string' }), required: false },
      maxPrice: { schema: { type: 'number', minimum: 0 }, required: false },
    });
  });

  it('documents the image analysis body per content type: JSON with a URL, a form with the image file, a raw image', () => {
    const body = (document.paths['/v1/images:analyze']!.post as unknown as { requestBody: { required: boolean; content: Record<string, { schema: Record<string, unknown> }> } }).requestBody;
    expect(body.required).toBe(true);
    expect(Object.fromEntries(Object.entries(body.content).map(([type, { schema }]) => [type, { type: schema.type, required: schema.required, format: schema.format }]))).toEqual({
      'application/json': { type: 'object', required: ['url'] },
      'multipart/form-data': { type: 'object', required: ['image'] },
      'image/*': { type: 'string', format: 'binary' },
      'application/octet-stream': { type: 'string', format: 'binary' },
    });
    expect(JSON.stringify(document)).not.toContain('x-keyless-request-bodies');
  });

  describe.each(routes.map((route) => [route.operation, route] as const))('%s', (operation, route) => {
    it('answers each documented error status to its probe, with problem details of a documented type', async () => {
      const documented = Object.keys(findOperation(operation).responses).map(Number).filter((status) => status >= 400).sort();
      const probes = probesOf(route);
      expect([...new Set([...probes.map((probe) => probe.status), 429])].sort()).toEqual(documented);
      const answers = [];
      for (const probe of probes) {
        const answer = await send(probe);
        const body = JSON.parse(answer.body) as Record<string, unknown>;
        // Each status's own schema: the parser's problems (408, 431, and some 400 and 413) have no `instance`.
        const missing = unmetRequirements(findOperation(operation).responses[answer.status], body);
        // The response's description lists the problem types of its status.
        const typeDocumented = findOperation(operation).responses[answer.status]?.description.includes(`\`${String(body.type).split('/').pop()}\``) ?? false;
        answers.push({ probe: probe.name, status: answer.status, type: body.type, typeDocumented, contentType: answer.headers['content-type'], missing, detail: body.detail });
      }
      expect(answers).toEqual(
        probes.map((probe) => ({
          probe: probe.name,
          status: probe.status,
          type: `https://keyless.dev/problems/${probe.type}`,
          typeDocumented: true,
          contentType: expect.stringMatching(/^application\/problem\+json/),
          missing: [],
          detail: expect.any(String),
        })),
      );
    }, 60_000);

    it('answers 429 to a caller over its limit (one request a minute on this gateway)', async () => {
      // `broken`: the first request gets through to a stand-in that fails at once (PUT publishes and answers 202).
      const probe = probeOf(route, 'a second request in a minute', 'broken', 429, 'rate-limited', { gateway: 'limited', caller: operation });
      expect((await send(probe)).status).not.toBe(429);
      const answer = await send(probe);
      expect(answer.status).toBe(429);
      expect(JSON.parse(answer.body)).toMatchObject({ type: 'https://keyless.dev/problems/rate-limited', status: 429 });
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    });

    it('lets a caller with any one of its documented app roles through, and refuses every other role', async () => {
      const roles = findOperation(operation)['x-keyless-app-roles']!;
      for (const role of Object.keys(gatewayAppRoles)) {
        const probe: Probe = { ...probesOf(route).find((p) => p.status === 400 && p.type === 'validation')!, roles: [role] };
        const answer = await send(probe);
        expect({ role, status: answer.status }).toEqual({ role, status: roles.includes(role) ? 400 : 403 });
      }
    });
  });

  it('answers a PUT with 202 and the documented Location of the product', async () => {
    expect(Object.keys(findOperation('PUT /v1/products/{id}').responses['202']!.headers ?? {})).toEqual(['Location']);
    const answer = await send(probeOf(routes[0]!, 'a product', 'lamp-1', 202, ''));
    expect({ status: answer.status, location: answer.headers.location }).toEqual({ status: 202, location: '/v1/products/lamp-1' });
  });

  it('answers a GET whose If-None-Match names the ETag of its 200 with 304 and no body, as documented', async () => {
    const operation = findOperation('GET /v1/products/{id}');
    expect(operation.responses['304']).toBeDefined();
    expect(Object.keys(operation.responses['200']!.headers ?? {})).toContain('ETag');
    expect(operation.parameters).toContainEqual(expect.objectContaining({ name: 'If-None-Match', in: 'header' }));
    const probe: Probe = { operation: 'GET /v1/products/{id}', name: 'a product', gateway: 'main', method: 'GET', path: '/v1/products/found', status: 200, type: '' };
    const first = await send(probe);
    expect(first.status).toBe(200);
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^W\/".+"$/);
    const again = await send({ ...probe, ifNoneMatch: etag });
    expect({ status: again.status, body: again.body, etag: again.headers.etag }).toEqual({ status: 304, body: '', etag });
  });

  it('answers no status that the document does not list for the operation', () => {
    const undocumented = answered.filter(({ operation, status }) => !(String(status) in findOperation(operation).responses));
    expect(undocumented).toEqual([]);
    expect(answered.length).toBeGreaterThan(routes.length * 8);
  });

  function findOperation(name: string): Operation {
    const found = operations().find(([n]) => n === name);
    if (!found) throw new Error(`${name} is not in the document`);
    return found[1];
  }
});
