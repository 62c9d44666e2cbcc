import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ProductView, RecommendationResult } from '@keyless/contracts';
import { freePort, repoRoot, waitFor, type RunningSystem } from '@keyless/launcher';
import { useRunningSystem } from './support/running-system.js';

const run = promisify(execFile);

/** The local Azure CLI against the running system's home (as a user would type it). */
async function localAzure(system: RunningSystem, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(repoRoot, 'tools/local-azure/dist/main.js'), ...args, '--output', 'json'], {
    env: { ...process.env, LOCAL_AZURE_HOME: system.home },
  });
  return stdout;
}

/** A token for the gateway from a host's managed-identity endpoint (what the SDK does, in one request). */
async function tokenAs(system: RunningSystem, host: string): Promise<string> {
  const env = system.hostEnv(host);
  const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: 'api://keyless-gateway', client_id: env.AZURE_CLIENT_ID! });
  const response = await fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
  return ((await response.json()) as { access_token: string }).access_token;
}

describe('Keyless, end to end through the gateway', () => {
  // An OTLP/HTTP (JSON) collector: the services export their spans here, as they would to a local Jaeger.
  const spans: { traceId: string; name: string; service: string }[] = [];
  let collector: Server | undefined;

  const e2e = useRunningSystem({
    name: 'system',
    // Two variants of each of the 36 product types: enough for similarity to mean something, quick to index.
    variantsPerType: 2,
    async systemOptions() {
      const server = createServer((request, response) => {
        let body = '';
        request.on('data', (chunk: Buffer) => (body += chunk.toString()));
        request.on('end', () => {
          if (request.url === '/v1/traces') collectSpans(JSON.parse(body) as OtlpTraces);
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      collector = server;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const otlp = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
      return { serviceEnv: { gateway: { REQUEST_TIMEOUT_MS: '4000', ...otlp }, recommendation: otlp, vision: otlp } };
    },
    afterStop: () => collector?.close(),
  });

  const json = async <T>(response: Response): Promise<T> => (await response.json()) as T;

  interface OtlpTraces {
    resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { traceId: string; name: string }[] }[] }[];
  }
  function collectSpans(traces: OtlpTraces): void {
    for (const { resource, scopeSpans } of traces.resourceSpans) {
      const service = resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const scope of scopeSpans) for (const span of scope.spans) spans.push({ traceId: span.traceId, name: span.name, service });
    }
  }

  describe('the catalog', () => {
    it('takes an upserted product through vision and indexing until it is recommendable', async () => {
      const redShoe = e2e.catalog.find((p) => p.product.id.startsWith('running-shoe'))!;
      const body = { name: 'Storm Trail Runner', description: 'A waterproof trail running shoe with a grippy outsole.', category: 'shoes', price: 129.9, imageUrl: redShoe.product.imageUrl };
      const put = await e2e.storefront.fetch('/v1/products/storm-trail-runner', { method: 'PUT', body: JSON.stringify(body) });
      expect(put.status).toBe(202);
      expect(put.headers.get('location')).toBe('/v1/products/storm-trail-runner');

      // The upsert is an event: until recommendation has applied it, a new product reads 404 — poll on.
      let view: ProductView | undefined;
      let last = '';
      await waitFor(async () => {
        const response = await e2e.storefront.fetch('/v1/products/storm-trail-runner');
        if (response.status === 404) return (last = 'still 404'), false;
        expect(response.status).toBe(200);
        view = await json<ProductView>(response);
        last = JSON.stringify(view.indexing);
        return view.indexing.state === 'indexed';
      }, 30_000, () => `not indexed: ${last}`, 250);
      expect(view!.vision).toMatchObject({ width: 128, height: 128, caption: { text: expect.any(String) } });
      expect(view!.vision!.tags.length).toBeGreaterThan(0);

      const similar = await json<RecommendationResult>(await e2e.storefront.fetch(`/v1/products/${redShoe.product.id}/similar?limit=5`));
      expect(similar.items.map((i) => i.product.id)).toContain('storm-trail-runner');
    });

    it('shows a product with its vision enrichment and indexing state', async () => {
      const { product } = e2e.catalog[0]!;
      const view = await json<ProductView>(await e2e.storefront.fetch(`/v1/products/${product.id}`));
      expect(view).toMatchObject({ product, indexing: { state: 'indexed' }, vision: { width: 128, height: 128 } });
    });
  });

  describe('recommendations', () => {
    it('finds shoes as the products most similar to a running shoe, with an explanation that names them', async () => {
      const result = await json<RecommendationResult>(await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=5'));
      expect(result.items).toHaveLength(5);
      expect(result.items.map((i) => i.product.category)).toEqual(Array(5).fill('shoes'));
      expect(result.items.map((i) => i.product.id)).not.toContain('running-shoe-aero-1');
      expect(result.items.every((item, i) => i === 0 || item.score <= result.items[i - 1]!.score)).toBe(true);
      expect(result.items.some((item) => result.explanation.includes(item.product.name))).toBe(true);
    });

    it('applies category and price filters to similar products', async () => {
      const result = await json<RecommendationResult>(await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=10&category=apparel&maxPrice=60'));
      expect(result.items.length).toBeGreaterThan(0);
      expect(result.items.every((i) => i.product.category === 'apparel' && i.product.price <= 60)).toBe(true);
    });

    it('recommends from viewed products and a query, excluding what was viewed and respecting filters', async () => {
      const viewed = ['hiking-boot', 'trail-running-shoe'].map((type) => e2e.catalog.find((p) => p.product.id.startsWith(`${type}-`))!.product.id);
      const response = await e2e.storefront.fetch('/v1/recommendations', {
        method: 'POST',
        body: JSON.stringify({ viewedProductIds: viewed, query: 'waterproof hiking boots', limit: 5, filters: { maxPrice: 250 } }),
      });
      const result = await json<RecommendationResult>(response);
      expect(response.status).toBe(200);
      expect(result.items.length).toBeGreaterThan(0);
      expect(result.items.every((i) => !viewed.includes(i.product.id) && i.product.price <= 250 && i.product.available)).toBe(true);
      expect(result.items[0]!.product.category).toBe('shoes');
      expect(result.explanation).toMatch(/waterproof hiking boots/);
    });
  });

  describe('image analysis', () => {
    const image = () => e2e.catalog.find((p) => p.product.category === 'electronics')!;

    it('analyses an uploaded image', async () => {
      const response = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: image().image, headers: { 'content-type': 'image/png' } });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ width: 128, height: 128, caption: { text: expect.stringMatching(/rectangle/) }, tags: expect.any(Array) });
    });

    it('analyses an image given by URL, and a form upload, the same way', async () => {
      const byUrl = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: JSON.stringify({ url: image().product.imageUrl }) });
      const form = new FormData();
      form.append('image', new Blob([image().image], { type: 'image/png' }), 'device.png');
      const byForm = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: form });
      expect(byUrl.status).toBe(200);
      expect(byForm.status).toBe(200);
      expect(await byUrl.json()).toEqual(await byForm.json());
    });
  });

  describe('errors, as problem details', () => {
    const problem = async (response: Response) => ({ status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as { status: number; type: string; errors?: { field: string }[] } });

    it('400 names every invalid field', async () => {
      const response = await e2e.storefront.fetch('/v1/products/bad id!', { method: 'PUT', body: JSON.stringify({ name: '', category: 'x', price: -3, imageUrl: 'ftp://x' }) });
      const { status, type, body } = await problem(response);
      expect(status).toBe(400);
      expect(type).toMatch(/^application\/problem\+json/);
      expect(body.errors!.map((e) => e.field).sort()).toEqual(['body.imageUrl', 'body.name', 'body.price', 'path.id']);
      const query = await problem(await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=0&maxPrice=cheap'));
      expect(query.body.errors!.map((e) => e.field).sort()).toEqual(['query.limit', 'query.maxPrice']);
    });

    it('400 for a body that is not JSON', async () => {
      expect((await problem(await e2e.storefront.fetch('/v1/recommendations', { method: 'POST', body: '{"query":' }))).status).toBe(400);
    });

    it('401 without a token or with a forged one', async () => {
      expect((await fetch(`${e2e.system.gatewayUrl}/v1/products/x`)).status).toBe(401);
      const token = await e2e.storefront.token();
      const forged = `${token.slice(0, token.lastIndexOf('.') + 1)}${'A'.repeat(20)}`;
      const response = await fetch(`${e2e.system.gatewayUrl}/v1/products/x`, { headers: { authorization: `Bearer ${forged}` } });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    });

    it("403 for a caller whose identity lacks the route's app role", async () => {
      const token = await tokenAs(e2e.system, 'gateway'); // the shared service identity holds no gateway app roles
      const response = await fetch(`${e2e.system.gatewayUrl}/v1/products/x`, { headers: { authorization: `Bearer ${token}` } });
      expect(await problem(response)).toMatchObject({ status: 403, body: { type: 'https://keyless.dev/problems/forbidden' } });
    });

    it('404 for an unknown product and an unknown route', async () => {
      expect((await e2e.storefront.fetch('/v1/products/no-such-product')).status).toBe(404);
      expect((await e2e.storefront.fetch('/v1/nothing-here')).status).toBe(404);
    });

    it('413 for a body or an image over the limit', async () => {
      const hugeJson = JSON.stringify({ query: 'x', padding: 'y'.repeat(100_000) });
      expect((await e2e.storefront.fetch('/v1/recommendations', { method: 'POST', body: hugeJson })).status).toBe(413);
      const hugeImage = Buffer.alloc(200 * 1024, 1);
      expect((await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: hugeImage, headers: { 'content-type': 'image/png' } })).status).toBe(413);
    });

    it('415 for an upload that is not an image', async () => {
      expect((await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
      const form = new FormData();
      form.append('image', new Blob(['not an image'], { type: 'text/plain' }), 'notes.txt');
      expect((await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: form })).status).toBe(415);
    });

    it('400 when Vision refuses the image itself (not an image, or an unreachable URL)', async () => {
      const corrupt = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: Buffer.from('not a png at all'), headers: { 'content-type': 'image/png' } });
      const unreachable = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: JSON.stringify({ url: 'http://127.0.0.1:1/missing.png' }) });
      expect(await problem(corrupt)).toMatchObject({ status: 400, body: { type: 'https://keyless.dev/problems/invalid-request' } });
      expect((await problem(unreachable)).status).toBe(400);
    });

    it('429 with Retry-After past the per-caller limit', async () => {
      const port = await freePort();
      await e2e.system.addGatewayInstance('gateway-limited', port, { RATE_LIMIT_PER_MINUTE: '3' });
      const token = await e2e.storefront.token();
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i++) {
        const response = await fetch(`http://127.0.0.1:${port}/v1/products/${e2e.catalog[0]!.product.id}`, { headers: { authorization: `Bearer ${token}` } });
        statuses.push(response.status);
        retryAfter ??= response.headers.get('retry-after');
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(retryAfter)).toBeGreaterThan(0);
    });

    it('503 on the routes that need a revoked role while the others keep working, and recovery without a restart', async () => {
      const shared = e2e.system.hostEnv('recommendation').AZURE_CLIENT_ID!;
      const role = ['--role', 'Cognitive Services OpenAI User', '--scope', 'openAi'];
      await localAzure(e2e.system, 'role', 'assignment', 'delete', '--assignee', shared, ...role);
      try {
        const similar = await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=3');
        expect(await problem(similar)).toMatchObject({ status: 503, body: { type: 'https://keyless.dev/problems/azure-access-unavailable' } });
        expect(similar.headers.get('retry-after')).toBeTruthy();
        expect((await e2e.storefront.fetch('/v1/products/running-shoe-aero-1')).status).toBe(200);
        expect((await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: e2e.catalog[0]!.image, headers: { 'content-type': 'image/png' } })).status).toBe(200);
      } finally {
        await localAzure(e2e.system, 'role', 'assignment', 'create', '--assignee', shared, ...role);
      }
      expect((await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=3')).status).toBe(200);
    });

    it('504 when the service behind a route does not answer in time, and recovery once it is back', async () => {
      await e2e.system.stopService('vision');
      try {
        const response = await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: JSON.stringify({ url: e2e.catalog[0]!.product.imageUrl }) });
        expect(await problem(response)).toMatchObject({ status: 504, body: { type: 'https://keyless.dev/problems/downstream-timeout' } });
      } finally {
        await e2e.system.restartService('vision');
      }
      expect((await e2e.storefront.fetch('/v1/images:analyze', { method: 'POST', body: JSON.stringify({ url: e2e.catalog[0]!.product.imageUrl }) })).status).toBe(200);
    });
  });

  describe('observability', () => {
    it("carries one trace from the caller's HTTP request through the bus to the Azure OpenAI calls", async () => {
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const response = await e2e.storefront.fetch('/v1/products/running-shoe-aero-1/similar?limit=2', { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` } });
      expect(response.status).toBe(200);
      await waitFor(
        () => ['gateway', 'recommendation'].every((service) => spans.some((s) => s.traceId === traceId && s.service === service)) && spans.some((s) => s.traceId === traceId && s.name === 'openai.chat.completions'),
        20_000,
        () => `spans of the trace: ${JSON.stringify(spans.filter((s) => s.traceId === traceId))}`,
        200,
      );
      const names = spans.filter((s) => s.traceId === traceId).map((s) => `${s.service}: ${s.name}`);
      expect(names).toEqual(expect.arrayContaining(['gateway: GET /v1/products/:id/similar', 'gateway: recommendation.similar-products send', 'recommendation: recommendation.similar-products process', 'recommendation: openai.chat.completions']));
    });
  });

  describe('the gateway itself', () => {
    it('answers liveness and readiness without a token', async () => {
      expect((await fetch(`${e2e.system.gatewayUrl}/health/live`)).status).toBe(200);
      const ready = await fetch(`${e2e.system.gatewayUrl}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', info: { identity: { status: 'up' }, servicebus: { status: 'up' } } });
    });

    it('publishes its OpenAPI document and Swagger UI at /docs', async () => {
      const document = (await (await fetch(`${e2e.system.gatewayUrl}/docs/openapi.json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(document.paths)).toEqual(
        expect.arrayContaining(['/v1/products/{id}', '/v1/products/{id}/similar', '/v1/recommendations', '/v1/images:analyze']),
      );
      expect((await fetch(`${e2e.system.gatewayUrl}/docs`)).headers.get('content-type')).toMatch(/text\/html/);
    });

    it('sends security headers', async () => {
      const response = await fetch(`${e2e.system.gatewayUrl}/health/live`);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('content-security-policy')).toBeTruthy();
    });
  });
});
