import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { builtInRoles, findRole } from '@keyless/contracts';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { ArmAuthorizationReader, ArmReadError, checkAccess, readDoctorOptions, type ArmReadFailure } from '../src/index.js';

/** An HTTPS server with the local Azure's certificate that answers from `answer` and records what it was asked. */
async function stubServer(test: TestAzure, answer: (url: string) => { status: number; headers?: Record<string, string>; body: string }): Promise<{ origin: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer({ cert: test.azure.tls.certPem, key: test.azure.tls.keyPem }, (request, response) => {
    requests.push(`${request.url} ${request.headers.authorization ?? ''}`);
    const { status, headers, body } = answer(request.url!);
    response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

const failureOf = async (promise: Promise<unknown>): Promise<ArmReadFailure> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ArmReadError);
  return (error as ArmReadError).failure;
};

describe(ArmAuthorizationReader.name, () => {
  let test: TestAzure;
  const servers: Server[] = [];
  const principalId = '7c0e4b1a-2d3f-4a5b-8c6d-9e0f1a2b3c4d';
  const scope = '/subscriptions/5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a/resourceGroups/rg';
  const assignment = (n: number) => ({
    id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${n}`,
    properties: { principalId, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${findRole('Reader')!.id}`, scope },
  });
  const stub = async (answer: Parameters<typeof stubServer>[1]) => {
    const started = await stubServer(test, answer);
    servers.push(started.server);
    return started;
  };
  const reader = (origin: string) => new ArmAuthorizationReader({ endpoint: origin, token: () => Promise.resolve('token-for-arm'), timeoutInMs: 10_000 });

  beforeAll(async () => {
    test = await startTestAzure();
  });
  afterAll(async () => {
    for (const server of servers) server.close();
    await test.stop();
  });

  describe('against the local Azure\'s ARM', () => {
    it('reads the operator\'s assignments and the definitions of their roles, as the built-in roles define them', async () => {
      const operator = test.azure.directory.operator.principalId;
      const arm = new ArmAuthorizationReader({ endpoint: test.azure.endpoints.management, token: () => test.operatorToken(), timeoutInMs: 10_000 });
      const subscription = `/subscriptions/${test.azure.directory.subscriptionId}`;
      const assignments = await arm.listRoleAssignments(test.azure.directory.resourceGroupId, operator);
      expect(assignments).toContainEqual({ id: expect.stringContaining(`${subscription}/providers/Microsoft.Authorization/roleAssignments/`), principalId: operator, roleDefinitionId: `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${findRole('Owner')!.id}`, scope: subscription });
      for (const role of builtInRoles) expect(await arm.getRoleDefinition(test.azure.directory.resourceGroupId, role.id)).toEqual(role);
    });
  });

  describe('when ARM pages its answer', () => {
    it('follows nextLink on the same origin and joins the pages', async () => {
      const { origin, requests } = await stub((url) =>
        url.includes('page=2') ? { status: 200, body: JSON.stringify({ value: [assignment(2)] }) } : { status: 200, body: JSON.stringify({ value: [assignment(1)], nextLink: `${origin}${scope}/providers/Microsoft.Authorization/roleAssignments?page=2` }) },
      );
      expect((await reader(origin).listRoleAssignments(scope, principalId)).map((a) => a.id.split('/').pop())).toEqual(['1', '2']);
      expect(requests[0]).toBe(`${scope}/providers/Microsoft.Authorization/roleAssignments?%24filter=assignedTo%28%27${principalId}%27%29&api-version=2022-04-01 Bearer token-for-arm`);
      expect(requests).toHaveLength(2);
    });

    it('refuses a nextLink to another origin, so the token goes nowhere else', async () => {
      const elsewhere = await stub(() => ({ status: 200, body: JSON.stringify({ value: [] }) }));
      const { origin } = await stub(() => ({ status: 200, body: JSON.stringify({ value: [assignment(1)], nextLink: `${elsewhere.origin}/steal` }) }));
      expect(await failureOf(reader(origin).listRoleAssignments(scope, principalId))).toEqual({ kind: 'failed', code: 'UnexpectedResponse', message: expect.stringContaining(`nextLink points at ${elsewhere.origin}`) });
      expect(elsewhere.requests).toEqual([]);
    });
  });

  describe('when ARM answers something else', () => {
    it('does not follow a redirect with the token', async () => {
      const elsewhere = await stub(() => ({ status: 200, body: JSON.stringify({ value: [] }) }));
      const { origin } = await stub(() => ({ status: 302, headers: { location: `${elsewhere.origin}/steal` }, body: '' }));
      expect(await failureOf(reader(origin).listRoleAssignments(scope, principalId))).toMatchObject({ kind: 'failed', status: 302 });
      expect(elsewhere.requests).toEqual([]);
    });

    it.each([
      [403, { error: { code: 'AuthorizationFailed', message: 'no' } }, { kind: 'forbidden', status: 403, code: 'AuthorizationFailed', message: 'no' }],
      [401, { error: { code: 'InvalidAuthenticationTokenAudience', message: 'aud' } }, { kind: 'unauthenticated', status: 401, code: 'InvalidAuthenticationTokenAudience', message: 'aud' }],
      [404, { error: { code: 'ResourceGroupNotFound', message: 'rg' } }, { kind: 'not-found', status: 404, code: 'ResourceGroupNotFound', message: 'rg' }],
      [429, { error: { code: 'TooManyRequests', message: 'later' } }, { kind: 'failed', status: 429, code: 'TooManyRequests', message: 'later' }],
      [200, { value: [{ id: 'x' }] }, { kind: 'failed', code: 'UnexpectedResponse', message: expect.stringContaining('lacks id, properties.principalId') }],
      [200, { values: [] }, { kind: 'failed', code: 'UnexpectedResponse', message: expect.stringContaining('has no "value" array') }],
    ])('reports %i %j as %j', async (status, body, failure) => {
      const { origin } = await stub(() => ({ status, body: JSON.stringify(body) }));
      expect(await failureOf(reader(origin).listRoleAssignments(scope, principalId))).toEqual(failure);
    });

    it('reports a token that cannot be had without calling ARM', async () => {
      const { origin, requests } = await stub(() => ({ status: 200, body: JSON.stringify({ value: [] }) }));
      const noToken = new ArmAuthorizationReader({ endpoint: origin, token: () => Promise.reject(new Error('identity endpoint down')), timeoutInMs: 10_000 });
      expect(await failureOf(noToken.listRoleAssignments(scope, principalId))).toEqual({ kind: 'failed', code: 'NoToken', message: 'the identity got no token for Azure Resource Manager (identity endpoint down)' });
      expect(requests).toEqual([]);
    });

    it('reports an answer that is not JSON', async () => {
      const { origin } = await stub(() => ({ status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad gateway</html>' }));
      expect(await failureOf(reader(origin).getRoleDefinition(scope, findRole('Reader')!.id))).toEqual({ kind: 'failed', status: 502, code: 'Http502', message: 'HTTP 502 Bad Gateway' });
    });
  });

  describe(`${checkAccess.name}, when the role definitions cannot be read`, () => {
    it('takes built-in roles from the built-in table with a note, lets an unknown role grant nothing, and counts group assignments', async () => {
      const namespace = `${scope}/providers/Microsoft.ServiceBus/namespaces/sb`;
      const group = '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';
      const custom = '2c3d4e5f-6071-4b8c-9d0e-1f2a3b4c5d6e';
      const held = (n: number, who: string, role: string, at: string) => ({ id: `${at}/providers/Microsoft.Authorization/roleAssignments/${n}`, properties: { principalId: who, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${role}`, scope: at } });
      const { origin } = await stub((url) =>
        url.includes('/roleDefinitions/')
          ? { status: 403, body: JSON.stringify({ error: { code: 'AuthorizationFailed', message: 'may not read role definitions' } }) }
          : {
              status: 200,
              body: JSON.stringify({
                value: [
                  held(1, principalId, findRole('Azure Service Bus Data Sender')!.id, `${namespace}/queues/q`),
                  held(2, group, findRole('Azure Service Bus Data Receiver')!.id, namespace),
                  held(3, principalId, custom, namespace),
                ],
              }),
            },
      );
      const options = readDoctorOptions({ AZURE_CLIENT_ID: principalId, AZURE_RESOURCE_MANAGER_ENDPOINT: origin, SERVICEBUS_NAMESPACE_RESOURCE_ID: namespace }, ['--check-access']);
      const view = await checkAccess({
        options,
        access: [{ role: 'Azure Service Bus Data Sender', roleDefinitionId: findRole('Azure Service Bus Data Sender')!.id, resource: 'serviceBus', queue: 'q', purpose: 'sends' }],
        principalId,
        token: () => Promise.resolve('token-for-arm'),
        probes: [],
      });
      expect(view.notes).toEqual([
        expect.stringMatching(/^Role definition 69a216fc-.* could not be read at .*namespaces\/sb \(403 AuthorizationFailed: may not read role definitions\); it is the built-in "Azure Service Bus Data Sender", taken from the built-in table/),
        expect.stringMatching(/^Role definition 4f6d3b9b-.*it is the built-in "Azure Service Bus Data Receiver"/),
        expect.stringMatching(new RegExp(`^Role definition ${custom} could not be read .*it is no built-in role, so its assignments count as granting nothing here\\.$`)),
      ]);
      const rows = view.scopes[0]!.dataActions.filter((r) => r.status !== 'not-granted').map((r) => [r.dataAction.split('/').slice(-2).join('/'), r.status, r.grantedBy.map((g) => g.role)]);
      expect(rows).toEqual([
        ['send/action', 'ok', ['Azure Service Bus Data Sender']],
        ['receive/action', 'not-in-access-json', ['Azure Service Bus Data Receiver']],
      ]);
      expect(view.assignments.map((a) => [a.id.split('/').pop(), a.role, a.principalId, a.inAccessJson])).toEqual([
        ['1', 'Azure Service Bus Data Sender', principalId, true],
        ['2', 'Azure Service Bus Data Receiver', group, false],
        ['3', custom, principalId, false],
      ]);
    });
  });

  describe(`${checkAccess.name}, when no resource id is configured`, () => {
    it('reads nothing, says so, and names every variable to set', async () => {
      const view = await checkAccess({
        options: readDoctorOptions({ AZURE_CLIENT_ID: principalId }, ['--check-access']),
        access: [
          { role: 'Cognitive Services User', roleDefinitionId: findRole('Cognitive Services User')!.id, resource: 'vision', purpose: 'analysis' },
          { role: 'Key Vault Secrets User', roleDefinitionId: findRole('Key Vault Secrets User')!.id, resource: 'keyVault', purpose: 'references' },
        ],
        principalId,
        token: () => Promise.resolve('token-for-arm'),
        probes: [],
      });
      expect({ read: view.read, scopes: view.scopes, unread: view.unread, notConfigured: view.notConfigured.map((n) => n.variable) }).toEqual({
        read: 'none',
        scopes: [],
        unread: [],
        notConfigured: ['AZURE_VISION_RESOURCE_ID', 'AZURE_KEY_VAULT_RESOURCE_ID'],
      });
    });
  });

  it('refuses an endpoint that is not https', () => {
    expect(() => reader('http://127.0.0.1:1')).toThrow(/is not an https URL; the identity's token would travel in clear/);
  });
});
