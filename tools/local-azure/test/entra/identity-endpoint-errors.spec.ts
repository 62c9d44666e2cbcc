import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

const cognitive = 'https://cognitiveservices.azure.com';

// Raw requests, to pin the exact statuses and bodies Azure's endpoints send for bad input.
describe('Managed-identity endpoints with bad requests', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let imds: string;

  beforeAll(async () => {
    test = await startTestAzure();
    env = test.azure.hostEnv('gateway');
    imds = `${test.azure.identityEndpointsOf('gateway').imdsAuthorityHost}/metadata/identity/oauth2/token`;
  });
  afterAll(() => test.stop());

  const appService = (query: Record<string, string>, header: string) =>
    fetch(`${env.IDENTITY_ENDPOINT}?${new URLSearchParams(query)}`, { headers: header ? { 'x-identity-header': header } : {} });
  const imdsGet = (query: Record<string, string>, metadata = true) =>
    fetch(`${imds}?${new URLSearchParams(query)}`, { headers: metadata ? { metadata: 'true' } : {} });

  describe('App Service shape', () => {
    it('answers a good request with the fields App Service sends, expires_on as a string epoch and resource echoed', async () => {
      const response = await appService({ 'api-version': '2019-08-01', resource: `${cognitive}/`, client_id: env.AZURE_CLIENT_ID! }, env.IDENTITY_HEADER!);
      const body = (await response.json()) as Record<string, string>;
      expect(response.status).toBe(200);
      expect([response.headers.get('cache-control'), response.headers.get('pragma')]).toEqual(['no-store', 'no-cache']);
      expect(Object.keys(body).sort()).toEqual(['access_token', 'client_id', 'expires_on', 'resource', 'token_type']);
      expect(body).toMatchObject({ resource: `${cognitive}/`, token_type: 'Bearer', client_id: env.AZURE_CLIENT_ID, expires_on: expect.stringMatching(/^\d{10}$/) });
    });

    it.each([
      ['a missing identity header', {}, '', 401, /X-IDENTITY-HEADER/],
      ['another host\'s identity header', {}, 'not-this-hosts-header', 401, /X-IDENTITY-HEADER/],
      ['an unsupported api-version', { 'api-version': '2017-09-01' }, 'ok', 400, /api-version '2017-09-01' is not supported/],
      ['no resource', { resource: '' }, 'ok', 400, /resource parameter is required/],
      ['an unknown resource', { resource: 'https://unknown.example.com' }, 'ok', 400, /AADSTS500011/],
      ['two identity selectors', { object_id: '00000000-0000-4000-8000-000000000000' }, 'ok', 400, /Only one of/],
      ['an unknown client id', { client_id: '00000000-0000-4000-8000-000000000000' }, 'ok', 400, /^Unable to load the proper Managed Identity\.$/],
    ])('refuses %s', async (_case, overrides, header, status, message) => {
      const query = { 'api-version': '2019-08-01', resource: cognitive, client_id: env.AZURE_CLIENT_ID!, ...overrides };
      if (query.resource === '') delete (query as Partial<typeof query>).resource;
      const response = await appService(query, header === 'ok' ? env.IDENTITY_HEADER : header);
      const body = (await response.json()) as { statusCode: number; message: string; correlationId: string };
      expect(response.status).toBe(status);
      expect(body).toMatchObject({ statusCode: status, correlationId: expect.any(String) });
      expect(body.message).toMatch(message);
    });
  });

  describe('IMDS shape', () => {
    it('answers a good request with the IMDS fields', async () => {
      const response = await imdsGet({ 'api-version': '2018-02-01', resource: cognitive, client_id: env.AZURE_CLIENT_ID! });
      expect(response.status).toBe(200);
      expect([response.headers.get('cache-control'), response.headers.get('pragma')]).toEqual(['no-store', 'no-cache']);
      expect(Object.keys((await response.json()) as object).sort()).toEqual([
        'access_token', 'expires_in', 'expires_on', 'ext_expires_in', 'not_before', 'refresh_token', 'resource', 'token_type',
      ]);
    });

    it.each([
      ['a missing Metadata header', {}, false, 'Required metadata header not specified'],
      ['a missing api-version', { 'api-version': '' }, true, 'Invalid or missing api-version. Use 2018-02-01 or later.'],
      ['no resource', { resource: '' }, true, 'Required audience parameter not specified'],
      ['an identity not assigned to the host', { client_id: '00000000-0000-4000-8000-000000000000' }, true, 'Identity not found'],
    ])('refuses %s with {error, error_description}', async (_case, overrides, metadata, description) => {
      const query: Record<string, string> = { 'api-version': '2018-02-01', resource: cognitive, client_id: env.AZURE_CLIENT_ID!, ...overrides };
      for (const key of Object.keys(query)) if (query[key] === '') delete query[key];
      const response = await imdsGet(query, metadata);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'invalid_request', error_description: description });
    });
  });

  it('logs every refusal with the reason', () => {
    const reasons = test.azure.auditLog.signIns({ limit: 100 }).filter((s) => s.outcome === 'failure').map((s) => s.reason);
    expect(reasons).toContain('Required metadata header not specified');
    expect(reasons).toContain('The X-IDENTITY-HEADER header is missing or is not the IDENTITY_HEADER of host "gateway".');
    expect(reasons).toHaveLength(11);
  });

  // After the log's count above: these add refusals of their own.
  describe('when the host in the path is the name of a property every object has', () => {
    it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('answers /hosts/%s/msi/token as any unknown host: 404, not a failure', async (name) => {
      const response = await fetch(`${test.azure.endpoints.identity}/hosts/${name}/msi/token?api-version=2019-08-01&resource=${cognitive}`, { headers: { 'x-identity-header': 'guess' } });
      // The host's configuration was looked up by that name, found on Object.prototype, and read as a host (500).
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ statusCode: 404, message: 'No host of the local Azure has a managed-identity endpoint at this address.' });
    });
  });
});
