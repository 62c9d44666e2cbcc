import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { eventually } from '../servicebus/support.js';

const cognitive = 'https://cognitiveservices.azure.com';
// A window of Azure's second: each case's few requests fall in it even on a loaded machine.
const throttling = { requestsPerWindow: 3, windowInMs: 1000, maxConcurrentRequests: 5 };

// Raw requests, to pin what Azure's endpoints send to a host past its limit.
describe('Managed-identity endpoints when a host makes too many token requests', () => {
  let test: TestAzure;
  let imds: (host: string) => Promise<Response>;
  let appService: (host: string, header?: string) => Promise<Response>;

  beforeAll(async () => {
    const serviceHost = { userAssigned: ['id-keyless'] };
    // A host per case, each with a fresh window.
    const hosts = { gateway: serviceHost, recommendation: serviceHost, vision: serviceHost, worker: serviceHost, storefront: { userAssigned: ['id-storefront'] } };
    test = await startTestAzure({ config: { hosts, identityEndpoint: { throttling } } });
    imds = (host) => {
      const base = test.azure.identityEndpointsOf(host).imdsAuthorityHost;
      const query = new URLSearchParams({ 'api-version': '2018-02-01', resource: cognitive, client_id: test.azure.hostEnv(host).AZURE_CLIENT_ID! });
      return fetch(`${base}/metadata/identity/oauth2/token?${query}`, { headers: { metadata: 'true' } });
    };
    appService = (host, header) => {
      const env = test.azure.hostEnv(host);
      const query = new URLSearchParams({ 'api-version': '2019-08-01', resource: cognitive, client_id: env.AZURE_CLIENT_ID! });
      return fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': header ?? env.IDENTITY_HEADER! } });
    };
  });
  afterAll(() => test.stop());

  it('refuses the request past the limit with IMDS\'s 429 and body, then serves the host again once the window has passed', async () => {
    const firstAdmittedAt = Date.now();
    for (let i = 0; i < throttling.requestsPerWindow; i++) expect((await imds('vision')).status).toBe(200);

    const refused = await imds('vision');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    // IMDS sends no Retry-After: the SDK's pipeline retries a 429 only when one is present.
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(await refused.json()).toEqual({ error: 'invalid_request', error_description: 'Temporarily throttled, too many requests' });

    const served = await eventually(async () => {
      const response = await imds('vision');
      return response.status === 200 ? Date.now() : undefined;
    }, 10_000, 'a token once the window has passed');
    expect(served - firstAdmittedAt).toBeGreaterThanOrEqual(throttling.windowInMs);
  });

  it("counts both shapes against the host, and answers the App Service shape with its own error body", async () => {
    for (let i = 0; i < throttling.requestsPerWindow; i++) expect((await appService('recommendation')).status).toBe(200);
    const refused = await imds('recommendation');
    expect(refused.status).toBe(429);
    const refusedAppService = await appService('recommendation');
    expect(refusedAppService.status).toBe(429);
    expect(refusedAppService.headers.get('retry-after')).toBeNull();
    expect(await refusedAppService.json()).toEqual({
      statusCode: 429,
      message: 'Temporarily throttled, too many requests (limit: 3 requests per 1000 ms and 5 at once per host).',
      correlationId: expect.any(String),
    });
  });

  it("throttles each host alone: another host's requests are served meanwhile", async () => {
    for (let i = 0; i < throttling.requestsPerWindow; i++) await imds('storefront');
    expect((await imds('storefront')).status).toBe(429);
    expect((await imds('gateway')).status).toBe(200);
  });

  it("does not count requests without the host's identity header, so no one else can throttle a host", async () => {
    for (let i = 0; i < throttling.requestsPerWindow * 3; i++) expect((await appService('worker', 'not-the-header')).status).toBe(401);
    const statuses = [];
    for (let i = 0; i <= throttling.requestsPerWindow; i++) statuses.push((await appService('worker')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('records a throttled host in the sign-in log once per window with the limit and the fix, and raises its alert until a window passes without throttling', async () => {
    const records = test.azure.auditLog.signIns({ limit: 1000 }).filter((s) => s.throttled);
    expect(records.map((s) => s.host).sort()).toEqual(['recommendation', 'storefront', 'vision', 'worker']);
    for (const record of records) {
      expect(record).toMatchObject({ outcome: 'failure', resource: cognitive });
      expect(record.reason).toMatch(/^Throttled: host "\w+" had 3 requests in the last 1000 ms \(limit: 3 requests per 1000 ms and 5 at once per host, as IMDS limits a VM\)\. Keep one credential per process/);
    }
    // vision got a token after its refusal: a throttled host's alert stays open all the same.
    const open = test.azure.alerts!.engine.list({ state: 'Fired' }).filter((a) => a.rule === 'identity-endpoint-failures');
    expect(open.map((a) => a.dimensions[0]!.value).sort()).toEqual(['recommendation', 'storefront', 'vision', 'worker']);
    expect(open.find((a) => a.dimensions[0]!.value === 'vision')!.summary).toMatch(/^host vision is throttled by the identity endpoint: Throttled: host "vision" had 3 requests/);
  });
});
