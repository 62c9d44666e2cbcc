import { createHash } from 'node:crypto';
import { FuzzGenerator, Random, type FuzzRequest } from './gateway-fuzz.js';

/** A request as a short digest (bodies run to megabytes). */
const digest = (request: FuzzRequest): string =>
  createHash('sha256').update(JSON.stringify([request.origin, request.method, request.path, request.headers])).update(request.body ?? '').update(request.raw ?? '').digest('hex');

const document = {
  paths: {
    '/v1/products/{id}': {
      put: {
        parameters: [{ name: 'id', in: 'path' as const, required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9]+$' } }],
        requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 }, imageUrl: { type: 'string', format: 'uri' }, price: { type: 'number', minimum: 0 } } } } } },
      },
    },
    '/v1/products/{id}/similar': {
      get: { parameters: [{ name: 'id', in: 'path' as const, required: true }, { name: 'limit', in: 'query' as const, schema: { type: 'integer', minimum: 1, maximum: 50 } }] },
    },
  },
};

describe(FuzzGenerator.name, () => {
  const local = { imageUrl: 'http://127.0.0.1:4000/images/x.png' };

  it('replays the same requests for the same seed', () => {
    const first = new FuzzGenerator(document, new Random(7), local);
    const second = new FuzzGenerator(document, new Random(7), local);
    const a = Array.from({ length: 300 }, () => digest(first.next('t')));
    const b = Array.from({ length: 300 }, () => digest(second.next('t')));
    expect(b).toEqual(a);
  });

  it('covers every documented operation, valid and broken, and the hostile families', () => {
    const generator = new FuzzGenerator(document, new Random(1), local);
    const origins = new Set(Array.from({ length: 3000 }, () => generator.next('t').origin));
    for (const origin of ['PUT /v1/products/{id}', 'PUT /v1/products/{id} (broken)', 'GET /v1/products/{id}/similar', 'malformed JSON', 'header flood', 'multipart abuse', 'token abuse', 'raw bytes', 'path traversal']) {
      expect(origins).toContain(origin);
    }
  });

  it('makes documented bodies that fit the schema when not breaking them', () => {
    const generator = new FuzzGenerator(document, new Random(3), local);
    for (let i = 0; i < 50; i++) {
      const request = generator.fromDocument('t', false);
      if (request.method !== 'PUT') continue;
      const body = JSON.parse(request.body!.toString()) as { name: string; price?: number };
      expect(body.name.length).toBeGreaterThan(0);
      if (body.price !== undefined) expect(body.price).toBeGreaterThanOrEqual(0);
    }
  });

  it('puts only addresses of this machine into the URLs it sends, so nothing is fetched from the network', () => {
    const generator = new FuzzGenerator(document, new Random(11), local);
    for (let i = 0; i < 3000; i++) {
      const request = generator.next('t');
      const text = `${request.path} ${request.body?.toString('latin1') ?? ''} ${request.raw?.toString('latin1') ?? ''}`;
      for (const [url] of text.matchAll(/\b(?:https?|ftp):\/\/[^\s"'\\]+/g)) {
        expect(new URL(url).hostname).toMatch(/^(127\.0\.0\.1|\[::1\])$/);
      }
    }
  });
});
