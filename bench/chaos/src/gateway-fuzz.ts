import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';

/**
 * The gateway fuzz: requests generated from the gateway's own OpenAPI document (every operation, with parameters
 * and bodies drawn from its schemas and then broken in every way a schema can be broken), plus hostile requests
 * that no document describes — huge, malformed and mistyped bodies, unicode and control characters, path
 * traversal, header floods, multipart abuse, missing, malformed and forged tokens, odd methods, raw bytes that
 * are not HTTP at all. The goal: no 5xx, and the gateway healthy afterwards.
 *
 * Every URL a fuzzed body carries points at this machine (the suite's image server or a closed port), so the local
 * Vision never fetches anything from the network.
 */

/** A generated request. `raw` requests are written to the socket byte for byte. */
export interface FuzzRequest {
  /** Where it came from: the operation (`PUT /v1/products/{id}`) or the hostile family. */
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  raw?: Buffer;
}

/** One answer (or why there was none). */
export interface FuzzResult {
  origin: string;
  method: string;
  path: string;
  status: number | 'network-error' | 'timeout';
  /** The start of the response body, kept for 5xx answers. */
  body?: string;
}

/** What a fuzz run found. */
export interface FuzzReport {
  seed: number;
  requests: number;
  byStatus: Record<string, number>;
  byOrigin: Record<string, Record<string, number>>;
  /** Every 5xx (at most 20), with what was sent. */
  serverErrors: FuzzResult[];
  serverErrorCount: number;
  /** The gateway answered /health/ready 200 and a normal request afterwards. */
  healthyAfter: boolean;
}

/** Options of {@link fuzzGateway}. */
export interface FuzzOptions {
  gatewayUrl: string;
  /** A valid caller token (the storefront's). */
  token: () => Promise<string>;
  /** A URL on this machine that serves an image (the suite's image server). */
  imageUrl: string;
  /** How many requests. **Default**: 10000. */
  requests?: number;
  /** Requests in flight. **Default**: 16. */
  concurrency?: number;
  /** Seed of the generator: the same seed sends the same requests. **Default**: 1. */
  seed?: number;
  /** Per-request timeout. **Default**: 30000 ms. */
  timeoutInMs?: number;
  /** Progress (every 1000 requests). **Default**: dropped. */
  log?: (line: string) => void;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
}
interface OpenApiOperation {
  parameters?: { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema?: JsonSchema }[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
/** The part of JSON Schema the gateway's document uses. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
  default?: unknown;
}

/** A small deterministic PRNG (mulberry32): the same seed replays the same fuzz. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Strings that break parsers, validators, loggers and file systems. */
const nastyStrings = [
  '',
  ' ',
  '\u0000',
  'null',
  'undefined',
  '[object Object]',
  '__proto__',
  'constructor',
  '../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%2e%2e%2f%2e%2e%2f',
  '%00',
  '%',
  '%%%%',
  '\u202e\u202dreversed',
  'Zalgo Z̸̢̛̛̛̰̤͎͓̪̩̥̯͇̼̜͉̼̩̗͚̞̀',
  '😀'.repeat(50),
  '\ud800',
  '\uffff\ufffe',
  "' OR 1=1 --",
  '"; DROP TABLE products; --',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}',
  '\r\nSet-Cookie: x=1',
  'a'.repeat(65),
  'a'.repeat(5000),
  '１２３',
  '-1',
  '1e309',
  'NaN',
  'Infinity',
  '0x10',
];

const idCharacters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';

/**
 * Builds requests: a third from the OpenAPI document as documented (valid values), a third from it broken (wrong
 * types, missing and extra fields, out-of-range values, nasty strings), a third hostile (no document describes
 * them).
 */
export class FuzzGenerator {
  private readonly operations: { method: string; path: string; operation: OpenApiOperation }[];

  constructor(
    document: OpenApiDocument,
    private readonly random: Random,
    private readonly local: { imageUrl: string },
  ) {
    this.operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([method]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method))
        .map(([method, operation]) => ({ method: method.toUpperCase(), path, operation })),
    );
    if (this.operations.length === 0) throw new Error('the OpenAPI document describes no operation');
  }

  /** The next request; `token` is a valid caller token, used unless the request is about tokens. */
  next(token: string): FuzzRequest {
    const roll = this.random.next();
    if (roll < 0.34) return this.fromDocument(token, false);
    if (roll < 0.67) return this.fromDocument(token, true);
    return this.hostile(token);
  }

  /** A request of a documented operation, with valid values or broken ones. */
  fromDocument(token: string, broken: boolean): FuzzRequest {
    const { method, path, operation } = this.random.pick(this.operations);
    let url = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      const schema = operation.parameters?.find((p) => p.in === 'path' && p.name === name)?.schema ?? { type: 'string' };
      return percentEncode(String(broken && this.random.chance(0.5) ? this.breakValue(schema) : this.value(schema, 0)));
    });
    const query = new URLSearchParams();
    for (const parameter of operation.parameters?.filter((p) => p.in === 'query') ?? []) {
      if (!parameter.required && this.random.chance(0.4)) continue;
      const value = broken && this.random.chance(0.5) ? this.breakValue(parameter.schema ?? {}) : this.value(parameter.schema ?? {}, 0);
      query.set(parameter.name, typeof value === 'string' ? value : JSON.stringify(value));
    }
    if (broken && this.random.chance(0.2)) query.set(this.random.pick(nastyStrings) || 'x', this.random.pick(nastyStrings));
    if (query.size) url += `?${query}`;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    const content = operation.requestBody?.content ?? {};
    let body: Buffer | undefined;
    if (content['application/json']?.schema) {
      const schema = content['application/json'].schema;
      const value = broken ? this.breakValue(schema) : this.value(schema, 0);
      body = Buffer.from(broken && this.random.chance(0.1) ? JSON.stringify(value).slice(0, -1) : JSON.stringify(value));
      headers['content-type'] = 'application/json';
    }
    return { origin: `${method} ${path}${broken ? ' (broken)' : ''}`, method, path: url, headers, ...(body ? { body } : {}) };
  }

  /** A value that fits the schema (as far as a sampler can make one). */
  value(schema: JsonSchema, depth: number): unknown {
    if (schema.const !== undefined) return schema.const;
    if (schema.enum) return this.random.pick(schema.enum);
    const choice = schema.oneOf ?? schema.anyOf;
    if (choice) return this.value(this.random.pick(choice), depth);
    if (schema.allOf) return Object.assign({}, ...schema.allOf.map((part) => this.value(part, depth)));
    const type = Array.isArray(schema.type) ? this.random.pick(schema.type) : schema.type;
    switch (type) {
      case 'object': {
        const object: Record<string, unknown> = {};
        for (const [name, property] of Object.entries(schema.properties ?? {})) {
          if (schema.required?.includes(name) || this.random.chance(0.6)) object[name] = this.value(property, depth + 1);
        }
        return object;
      }
      case 'array':
        return Array.from({ length: this.random.int(0, Math.min(schema.maxItems ?? 5, 5)) }, () => this.value(schema.items ?? {}, depth + 1));
      case 'integer':
        return this.random.int(schema.minimum ?? 0, Math.min(schema.maximum ?? 1000, 1000));
      case 'number':
        return Math.round((schema.minimum ?? 0) * 100 + this.random.next() * (Math.min(schema.maximum ?? 1000, 1000) - (schema.minimum ?? 0)) * 100) / 100;
      case 'boolean':
        return this.random.chance(0.5);
      case 'string':
        return this.string(schema);
      default:
        return this.random.pick([null, 1, 'x', true]);
    }
  }

  /** A value that breaks the schema: wrong type, out of range, too long, nasty, missing or extra fields. */
  breakValue(schema: JsonSchema): unknown {
    const roll = this.random.next();
    if (roll < 0.15) return this.random.pick([null, true, 0, -1, 1e308, [], {}, '', 'x']);
    if (roll < 0.3) return this.random.pick(nastyStrings);
    if (roll < 0.4) return deepNesting(this.random.int(50, 500));
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    if (type === 'object' || schema.oneOf || schema.properties) {
      const valid = this.value(schema, 0);
      const object = (typeof valid === 'object' && valid !== null ? { ...valid } : {}) as Record<string, unknown>;
      const names = Object.keys(object);
      if (names.length && this.random.chance(0.4)) delete object[this.random.pick(names)];
      if (names.length && this.random.chance(0.5)) object[this.random.pick(names)] = this.breakValue({});
      if (this.random.chance(0.3)) object[this.random.pick(['__proto__', 'constructor', 'extra', '$where', '😀'])] = this.random.pick(nastyStrings);
      if (this.random.chance(0.1)) object.padding = 'x'.repeat(this.random.int(10_000, 300_000));
      return object;
    }
    if (type === 'integer' || type === 'number') return this.random.pick([-1, 0, 1.5, 51, 1e21, -0, Number.MAX_SAFE_INTEGER + 2, '12', 'twelve']);
    if (type === 'array') return Array.from({ length: this.random.int(51, 500) }, () => this.random.pick(nastyStrings));
    return this.random.pick(['x'.repeat(this.random.int(65, 100_000)), ...nastyStrings]);
  }

  /** Requests no document describes. */
  hostile(token: string): FuzzRequest {
    const json = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const route = this.random.pick(['/v1/products/p-1', '/v1/recommendations', '/v1/images:analyze', '/v1/products/p-1/similar']);
    const method = route === '/v1/products/p-1' ? 'PUT' : route.endsWith('similar') ? 'GET' : 'POST';
    const families: (() => FuzzRequest)[] = [
      () => ({ origin: 'malformed JSON', method, path: route, headers: json, body: Buffer.from(this.random.pick(['{', '{"a":', '[1,2', '{"a":1}}', "{'a':1}", 'NaN', '\u0000\u0001', '{"a":"\\ud800"}', '{"a":1,"a":2}'])) }),
      () => ({ origin: 'huge body', method, path: route, headers: json, body: Buffer.alloc(this.random.int(200_000, 3_000_000), 0x61) }),
      () => ({ origin: 'huge JSON', method, path: route, headers: json, body: Buffer.from(JSON.stringify({ query: 'x', list: Array.from({ length: 50_000 }, (_, i) => i) })) }),
      () => ({ origin: 'deep JSON', method, path: route, headers: json, body: Buffer.from(deepJsonText(this.random.int(1_000, 20_000))) }),
      () => ({
        origin: 'wrong content type',
        method,
        path: route,
        headers: { authorization: `Bearer ${token}`, 'content-type': this.random.pick(['text/xml', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/octet-stream', 'image/png', 'application/json;;', '*/*', 'multipart/form-data']) },
        body: Buffer.from(this.random.pick(['<a>1</a>', 'a=1&b=2', '{"query":"shoes"}', '\u0089PNG\r\n', 'x'])),
      }),
      () => ({ origin: 'unicode path', method: 'GET', path: `/v1/products/${percentEncode(this.random.pick(nastyStrings))}`, headers: { authorization: `Bearer ${token}` } }),
      () => ({
        origin: 'path traversal',
        method: this.random.pick(['GET', 'PUT', 'POST', 'DELETE']),
        path: this.random.pick(['/v1/products/../../etc/passwd', '/v1/%2e%2e/%2e%2e/etc/passwd', '/v1/products/..%2f..%2f', '/..;/v1/products', '//v1//products//x', '/v1/products/%00', '/v1/products/x%0d%0aSet-Cookie:a=b', '/docs/../health/ready', '/v1/images:analyze/..', '/\\\\server\\share']),
        headers: { authorization: `Bearer ${token}` },
      }),
      () => ({ origin: 'long URL', method: 'GET', path: `/v1/products/${'a'.repeat(this.random.int(2_000, 60_000))}`, headers: { authorization: `Bearer ${token}` } }),
      () => ({
        origin: 'header flood',
        method: 'GET',
        path: '/v1/products/p-1',
        headers: { authorization: `Bearer ${token}`, ...Object.fromEntries(Array.from({ length: this.random.int(100, 2_000) }, (_, i) => [`x-flood-${i}`, 'v'.repeat(this.random.int(1, 100))])) },
      }),
      () => ({ origin: 'huge header', method: 'GET', path: '/v1/products/p-1', headers: { authorization: `Bearer ${token}`, 'x-big': 'v'.repeat(this.random.int(16_000, 200_000)) } }),
      () => ({ origin: 'duplicate headers', method: 'POST', path: '/v1/recommendations', headers: { authorization: [`Bearer ${token}`, 'Bearer other'], 'content-type': ['application/json', 'text/plain'] }, body: Buffer.from('{"query":"x"}') }),
      () => {
        const boundary = 'fuzz-boundary';
        const parts = this.random.pick([
          `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="../../etc/passwd"\r\nContent-Type: image/png\r\n\r\nnot a png\r\n--${boundary}--\r\n`,
          `--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n${'x'.repeat(300_000)}\r\n--${boundary}--\r\n`,
          Array.from({ length: 500 }, (_, i) => `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('') + `--${boundary}--\r\n`,
          `--${boundary}\r\nContent-Disposition: form-data; name="url"\r\n\r\n${this.local.imageUrl}\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nxx\r\n--${boundary}--\r\n`,
          `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nunterminated`,
          `--other\r\n\r\n--other--`,
          `--${boundary}\r\nContent-Disposition: form-data; name="url"\r\n\r\nfile:///etc/passwd\r\n--${boundary}--\r\n`,
        ]);
        const type = this.random.pick([`multipart/form-data; boundary=${boundary}`, 'multipart/form-data', `multipart/form-data; boundary=${'b'.repeat(200)}`, `multipart/mixed; boundary=${boundary}`]);
        return { origin: 'multipart abuse', method: 'POST', path: '/v1/images:analyze', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body: Buffer.from(parts) };
      },
      () => ({
        origin: 'image URL abuse',
        method: 'POST',
        path: '/v1/images:analyze',
        headers: json,
        body: Buffer.from(JSON.stringify({ url: this.random.pick([this.local.imageUrl, 'http://127.0.0.1:1/x.png', 'file:///etc/passwd', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'data:image/png;base64,AAAA', 'http://[::1]:1/', `${this.local.imageUrl}#${'x'.repeat(5000)}`, 'http://127.0.0.1:1@127.0.0.1:1/']) })),
      }),
      () => ({
        origin: 'token abuse',
        method: 'GET',
        path: '/v1/products/p-1',
        headers: {
          authorization: this.random.pick([
            '',
            'Bearer',
            'Bearer ',
            `Basic ${Buffer.from(`fuzz:${this.random.int(0, 1e6)}`).toString('base64')}`,
            `bearer ${token}`,
            `Bearer ${token}x`,
            `Bearer ${token.split('.').slice(0, 2).join('.')}.`,
            `Bearer ${forgeNone(token)}`,
            `Bearer ${forgeClaims(token)}`,
            `Bearer ${'a'.repeat(20_000)}`,
            `Bearer ${token} ${token}`,
            'Bearer e30.e30.e30',
            'Bearer \u00ff\u00fe',
          ]),
        },
      }),
      () => ({ origin: 'no token', method, path: route, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"query":"x"}') }),
      () => ({ origin: 'odd method', method: this.random.pick(['PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND']), path: route, headers: { authorization: `Bearer ${token}` } }),
      () => ({ origin: 'raw bytes', method: 'RAW', path: '-', headers: {}, raw: this.rawRequest(token) }),
    ];
    return this.random.pick(families)();
  }

  private string(schema: JsonSchema): string {
    if (schema.format === 'uri' || schema.format === 'url') return this.random.chance(0.7) ? this.local.imageUrl : 'http://127.0.0.1:1/missing.png';
    if (schema.format === 'date-time') return new Date(this.random.int(0, 2_000_000_000) * 1000).toISOString();
    const length = this.random.int(Math.max(1, schema.minLength ?? 1), Math.min(schema.maxLength ?? 20, 20));
    return Array.from({ length }, (_, i) => (i === 0 ? this.random.pick(idCharacters.slice(0, 62).split('')) : this.random.pick(idCharacters.split('')))).join('');
  }

  private rawRequest(token: string): Buffer {
    return Buffer.from(
      this.random.pick([
        'GET / HTTP/1.1\r\n\r\n',
        'GARBAGE\r\n\r\n',
        `POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":`,
        `POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzz\r\n`,
        `GET /v1/products/p-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\nGET /v1/products/p-2 HTTP/1.1\r\nHost: x\r\n\r\n`,
        'GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n',
        `GET /v1/products/p-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Bad: a\u0000b\r\n\r\n`,
        '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003',
      ]),
      'latin1',
    );
  }
}

/** Runs the fuzz against a running gateway and checks it is healthy afterwards. */
export async function fuzzGateway(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? 1;
  const total = options.requests ?? 10_000;
  const timeoutInMs = options.timeoutInMs ?? 30_000;
  const document = (await (await fetch(`${options.gatewayUrl}/docs/openapi.json`)).json()) as OpenApiDocument;
  const generator = new FuzzGenerator(document, new Random(seed), { imageUrl: options.imageUrl });
  const report: FuzzReport = { seed, requests: 0, byStatus: {}, byOrigin: {}, serverErrors: [], serverErrorCount: 0, healthyAfter: false };
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency ?? 16 }, async () => {
      while (next < total) {
        next++;
        const request = generator.next(await options.token());
        const result = await send(options.gatewayUrl, request, timeoutInMs);
        report.requests++;
        report.byStatus[String(result.status)] = (report.byStatus[String(result.status)] ?? 0) + 1;
        const origin = (report.byOrigin[request.origin] ??= {});
        origin[String(result.status)] = (origin[String(result.status)] ?? 0) + 1;
        if (typeof result.status === 'number' && result.status >= 500) {
          report.serverErrorCount++;
          if (report.serverErrors.length < 20) report.serverErrors.push(result);
        }
        if (report.requests % 1000 === 0) options.log?.(`${report.requests}/${total} requests, ${report.serverErrorCount} 5xx`);
      }
    }),
  );
  report.healthyAfter = await healthy(options.gatewayUrl, await options.token());
  return report;
}

/** Whether the gateway is ready and answers a documented request normally. */
async function healthy(gatewayUrl: string, token: string): Promise<boolean> {
  const ready = await fetch(`${gatewayUrl}/health/ready`).then((r) => r.status, () => 0);
  const normal = await fetch(`${gatewayUrl}/v1/recommendations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'a light running shoe', limit: 3 }),
  }).then((r) => r.status, () => 0);
  return ready === 200 && normal === 200;
}

/** Sends one request as written (no header normalisation, no retries); a raw request goes straight to the socket. */
export function send(gatewayUrl: string, request: FuzzRequest, timeoutInMs: number): Promise<FuzzResult> {
  const base = { origin: request.origin, method: request.method, path: request.path.slice(0, 200) };
  const { hostname, port } = new URL(gatewayUrl);
  if (request.raw) return sendRaw(hostname, Number(port), request.raw, timeoutInMs, base);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: FuzzResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const req = httpRequest({ hostname, port, method: request.method, path: request.path, headers: request.headers, timeout: timeoutInMs, insecureHTTPParser: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < 2000) chunks.push(chunk);
        size += chunk.length;
      });
      res.on('end', () => finish({ ...base, status: res.statusCode ?? 0, ...((res.statusCode ?? 0) >= 500 ? { body: Buffer.concat(chunks).toString('utf8').slice(0, 500) } : {}) }));
      res.on('error', () => finish({ ...base, status: res.statusCode ?? 'network-error' }));
    });
    req.on('timeout', () => {
      req.destroy();
      finish({ ...base, status: 'timeout' });
    });
    // The gateway may answer (413, 431) and close before the whole body is written: that is an answer, not an error.
    req.on('error', () => finish({ ...base, status: 'network-error' }));
    req.end(request.body);
  });
}

function sendRaw(host: string, port: number, bytes: Buffer, timeoutInMs: number, base: Pick<FuzzResult, 'origin' | 'method' | 'path'>): Promise<FuzzResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let answer = '';
    const timer = setTimeout(() => socket.destroy(), Math.min(timeoutInMs, 5_000));
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.length > 4096) socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      // Several responses may come back (pipelining): the worst one counts.
      const statuses = [...answer.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
      const worst = statuses.length ? Math.max(...statuses) : 'network-error';
      resolve({ ...base, status: worst, ...(typeof worst === 'number' && worst >= 500 ? { body: answer.slice(0, 500) } : {}) });
    });
    socket.on('error', () => undefined);
  });
}

/** Percent-encodes every byte of the UTF-8 form but the unreserved ones (a lone surrogate becomes U+FFFD, as on the wire). */
function percentEncode(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((byte) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** JSON nested `depth` levels deep, written as text (JSON.stringify itself would overflow its stack). */
function deepJsonText(depth: number): string {
  return `${'{"a":['.repeat(depth)}0${']}'.repeat(depth)}`;
}

function deepNesting(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

/** The token with `alg: none` and no signature. */
function forgeNone(token: string): string {
  const [, payload] = token.split('.');
  return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
}

/** The token's claims changed (more roles, later expiry), signature kept. */
function forgeClaims(token: string): string {
  const [header, payload, signature] = token.split('.');
  let claims: Record<string, unknown> = {};
  try {
    claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    // Not a JWT: forge from nothing.
  }
  // A fixed far-future expiry (2100-01-01): the same seed sends the same bytes.
  const forged = { ...claims, roles: ['Admin', 'Catalog.Write'], exp: 4_102_444_800 };
  return `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
}
