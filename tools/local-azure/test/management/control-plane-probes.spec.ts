import { generateKeyPair, SignJWT } from 'jose';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AuthorizationRecord } from '../../src/audit/audit-log.js';
import { serviceBusDataPlane } from '../../src/servicebus/service-bus-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { testTopologyFile } from '../servicebus/support.js';

// Hidden-probe style: what a process with the gateway host's env file (and nothing else) can try against the local
// Azure's identity endpoint and management API. Every refusal must be Azure-shaped and leave a line in the
// authorization log; nothing may change.
describe('Probes from the gateway host against the identity endpoint and the control plane', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let arm: string;
  const subscription = (): string => `/subscriptions/${test.azure.directory.subscriptionId}`;

  const getToken = async (resource: string, query: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
    const url = `${env.IDENTITY_ENDPOINT}?${new URLSearchParams({ 'api-version': '2019-08-01', resource, client_id: env.AZURE_CLIENT_ID!, ...query })}`;
    const response = await fetch(url, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  // Fetched once and kept, as the SDK's token cache does: the identity endpoint allows a host 20 token requests a
  // second, as IMDS allows a VM, and the probes below make more calls than that.
  let armToken: Promise<string> | undefined;
  const serviceArmToken = (): Promise<string> => (armToken ??= getToken('https://management.azure.com/').then(({ body }) => body.access_token as string));
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const response = await fetch(`${arm}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: (text ? JSON.parse(text) : undefined) as { error?: { code: string; message: string } } | undefined };
  };
  /** Runs `probe` and returns the authorization log lines it added. */
  const logged = async (probe: () => Promise<unknown>): Promise<AuthorizationRecord[]> => {
    const before = test.azure.auditLog.authorizations({ limit: 1 })[0]?.time ?? '';
    const count = test.azure.auditLog.authorizations({ limit: 10_000 }).length;
    await probe();
    const after = test.azure.auditLog.authorizations({ limit: 10_000 });
    return after.slice(0, after.length - count).filter((r) => r.time >= before);
  };
  const assignments = (): string => JSON.stringify(test.azure.roleAssignments.all());

  beforeAll(async () => {
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane],
      config: {
        resources: { serviceBus: { topologyFile: testTopologyFile } },
        users: {
          reader: { roleAssignments: [{ role: 'Reader', scope: 'subscription' }] },
          contributor: { roleAssignments: [{ role: 'Contributor', scope: 'subscription' }] },
          access: { displayName: 'Access admin', roleAssignments: [{ role: 'User Access Administrator', scope: 'resourceGroup' }] },
          rbac: { roleAssignments: [{ role: 'Role Based Access Control Administrator', scope: 'serviceBus' }] },
        },
      },
    });
    env = test.azure.hostEnv('gateway');
    arm = env.AZURE_RESOURCE_MANAGER_ENDPOINT!;
  });
  afterAll(() => test.stop());

  describe("when it asks for another host's token", () => {
    const storefrontClientId = (): string => test.azure.directory.userAssignedIdentity('id-storefront')!.clientId;

    const appService = (): Record<string, string> => ({ 'x-identity-header': env.IDENTITY_HEADER! });
    const imds = (): Record<string, string> => ({ metadata: 'true' });
    const listener = (): string => env.IDENTITY_ENDPOINT!.split('/hosts/')[0]!;

    // Each asks for the storefront's identity, which holds the gateway API's app roles.
    it.each([
      ["another host's App Service endpoint with its own identity header", () => env.IDENTITY_ENDPOINT!.replace('/hosts/gateway/', '/hosts/storefront/'), appService, 401, { statusCode: 401, message: 'The X-IDENTITY-HEADER header is missing or is not the IDENTITY_HEADER of host "storefront".' }],
      ['its own App Service endpoint, for an identity it does not hold', () => env.IDENTITY_ENDPOINT!, appService, 400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.' }],
      ['its own IMDS address, for an identity it does not hold', () => `${env.AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token`, imds, 400, { error: 'invalid_request', error_description: 'Identity not found' }],
      ['the old IMDS route of another host, which needed only Metadata: true', () => `${listener()}/hosts/storefront/metadata/identity/oauth2/token`, imds, 401, { error: 'unauthorized_client' }],
      ['a guessed IMDS capability', () => `${listener()}/imds/${randomBytes(32).toString('hex')}/metadata/identity/oauth2/token`, imds, 401, { error: 'unauthorized_client' }],
    ])('is refused at %s', async (_case, url, headers, status, body) => {
      const query = new URLSearchParams({
        'api-version': url().includes('/msi/') ? '2019-08-01' : '2018-02-01',
        resource: 'api://keyless-gateway',
        client_id: storefrontClientId(),
      });
      let response!: Response;
      const lines = await logged(async () => (response = await fetch(`${url()}?${query}`, { headers: headers() })));
      expect(response.status).toBe(status);
      const json = (await response.json()) as Record<string, unknown>;
      expect(json).toMatchObject(body);
      expect(json).not.toHaveProperty('access_token');
      expect(lines).toEqual([expect.objectContaining({ resource: 'identity', decision: 'denied', reason: expect.any(String) })]);
    });

    it('still gets its own tokens through both shapes, with nothing but its env file', async () => {
      expect((await getToken('https://servicebus.azure.net')).status).toBe(200);
      const imds = await fetch(
        `${env.AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://servicebus.azure.net&client_id=${env.AZURE_CLIENT_ID}`,
        { headers: { metadata: 'true' } },
      );
      expect(imds.status).toBe(200);
    });
  });

  describe('when it tries to change role assignments', () => {
    const queue = (): string => `${test.azure.directory.resourceId('serviceBus')}/queues/orders`;
    const armPut = (): string => `${queue()}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`;
    const grant = (): unknown => ({
      properties: {
        roleDefinitionId: `${subscription()}/providers/Microsoft.Authorization/roleDefinitions/090c5cfd-751d-490a-894a-3ce6f1109419`,
        principalId: test.azure.directory.findIdentity('id-keyless')!.principalId,
      },
    });
    const cliCreate = { assignee: 'id-keyless', role: 'Azure Service Bus Data Owner', scope: 'serviceBus' };

    const tokens: Record<string, () => Promise<string | undefined>> = {
      'no token': async () => undefined,
      'a malformed token': async () => 'not-a-jwt',
      'a token signed with a key of its own': async () => {
        const { privateKey } = await generateKeyPair('RS256');
        const real = JSON.parse(Buffer.from((await serviceArmToken()).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        return new SignJWT(real).setProtectedHeader({ alg: 'RS256', kid: test.azure.keys.current.kid }).sign(privateKey);
      },
      'its managed identity token for another audience (Service Bus)': async () => (await getToken('https://servicebus.azure.net')).body.access_token as string,
      'an expired management token': async () => {
        const { kid, privateKey } = test.azure.keys.current;
        const real = JSON.parse(Buffer.from((await serviceArmToken()).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        const past = Math.floor(Date.now() / 1000) - 7200;
        return new SignJWT({ ...real, iat: past - 3600, nbf: past - 3600, exp: past }).setProtectedHeader({ alg: 'RS256', kid, x5t: kid }).sign(privateKey);
      },
    };

    it.each([
      ['no token', 'AuthenticationFailed'],
      ['a malformed token', 'InvalidAuthenticationToken'],
      ['a token signed with a key of its own', 'InvalidAuthenticationToken'],
      ['its managed identity token for another audience (Service Bus)', 'InvalidAuthenticationTokenAudience'],
      ['an expired management token', 'ExpiredAuthenticationToken'],
    ])('refuses %s with 401 %s and a WWW-Authenticate challenge, directly and through the ARM API', async (kind, code) => {
      const token = await tokens[kind]!();
      const before = assignments();
      for (const [method, path, body] of [
        ['POST', '/roleAssignments', cliCreate],
        ['PUT', armPut(), grant()],
        ['DELETE', `/roleAssignments?assignee=id-keyless`, undefined],
      ] as const) {
        let response!: Awaited<ReturnType<typeof call>>;
        const lines = await logged(async () => (response = await call(method, path, token, body)));
        expect(response.status).toBe(401);
        expect(response.json?.error?.code).toBe(code);
        expect(response.headers.get('www-authenticate')).toMatch(new RegExp(`^Bearer authorization_uri="${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}", error="invalid_token"`));
        expect(lines).toEqual([expect.objectContaining({ resource: 'management', decision: 'denied', reason: expect.stringContaining(code) })]);
      }
      expect(assignments()).toBe(before);
    });

    it('names the allowed audiences when the token is for another one', async () => {
      const response = await call('GET', '/roleAssignments', (await getToken('https://servicebus.azure.net')).body.access_token as string);
      expect(response.json?.error?.message).toBe(
        "The access token has been obtained for wrong audience or resource 'https://servicebus.azure.net'. It should exactly match with one of the allowed audiences " +
          "'https://management.azure.com/','https://management.azure.com','https://management.core.windows.net/','https://management.core.windows.net'.",
      );
    });

    it.each([
      ['its managed identity (id-keyless)', async () => serviceArmToken(), () => test.azure.directory.findIdentity('id-keyless')!.clientId],
      ['a reader', async () => test.operatorToken('reader'), () => `reader@${test.azure.directory.domain}`],
      ['a contributor', async () => test.operatorToken('contributor'), () => `contributor@${test.azure.directory.domain}`],
    ])('refuses a valid token of %s with 403 AuthorizationFailed, directly and through the ARM API', async (_who, token, client) => {
      const bearer = await token();
      const before = assignments();
      for (const [method, path, body, action] of [
        ['POST', '/roleAssignments', cliCreate, 'write'],
        ['PUT', armPut(), grant(), 'write'],
        ['DELETE', `/roleAssignments?assignee=id-keyless&scope=openAi`, undefined, 'delete'],
      ] as const) {
        let response!: Awaited<ReturnType<typeof call>>;
        const lines = await logged(async () => (response = await call(method, path, bearer, body)));
        expect(response.status).toBe(403);
        expect(response.json?.error).toMatchObject({
          code: 'AuthorizationFailed',
          message: expect.stringMatching(new RegExp(`^The client '${client()}' with object id '[0-9a-f-]{36}' does not have authorization to perform action 'Microsoft\\.Authorization/roleAssignments/${action}' over scope '/subscriptions/`)),
        });
        expect(lines.at(-1)).toMatchObject({ resource: 'management', action: `Microsoft.Authorization/roleAssignments/${action}`, decision: 'denied' });
      }
      expect(assignments()).toBe(before);
    });

    it('accepts every spelling of the management audience ARM accepts', async () => {
      for (const audience of ['https://management.azure.com', 'https://management.azure.com/', 'https://management.core.windows.net', 'https://management.core.windows.net/']) {
        const token = (await getToken(audience)).body.access_token as string;
        // Authenticated, then refused by RBAC: 403, not 401.
        expect((await call('GET', '/hosts', token)).status).toBe(403);
      }
    });

    it('lets Owner, User Access Administrator and RBAC Administrator write where they hold the role, and nobody else', async () => {
      const put = async (user: string, scope: string): Promise<number> => {
        const path = `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`;
        const principalId = test.azure.directory.findIdentity('id-storefront')!.principalId;
        const roleDefinitionId = `${subscription()}/providers/Microsoft.Authorization/roleDefinitions/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39`;
        const response = await call('PUT', path, await test.operatorToken(user), { properties: { roleDefinitionId, principalId } });
        if (response.status === 201) await call('DELETE', path, await test.operatorToken());
        return response.status;
      };
      const namespace = test.azure.directory.resourceId('serviceBus');
      expect(await put('operator', `${namespace}/queues/orders`)).toBe(201);
      expect(await put('access', `${namespace}/queues/orders`)).toBe(201);
      expect(await put('rbac', `${namespace}/queues/orders`)).toBe(201);
      expect(await put('rbac', test.azure.directory.resourceId('openAi'))).toBe(403);
      expect(await put('access', subscription())).toBe(403);
      expect(await put('contributor', `${namespace}/queues/orders`)).toBe(403);
      expect(await put('reader', `${namespace}/queues/orders`)).toBe(403);
    });
    it("refuses a scope with '.' or '..' segments, or beside the subscription, to a writer beneath it, and creates nothing", async () => {
      // rbac holds Role Based Access Control Administrator on the namespace: `…/queues/orders/../../..` is beneath it
      // segment by segment, and reads as the subscription to anything that resolves paths.
      const token = await test.operatorToken('rbac');
      const namespace = test.azure.directory.resourceId('serviceBus');
      const before = assignments();
      for (const scope of [`${namespace}/queues/orders/../../..`, `${namespace}/./queues/orders`, `${namespace}/queues/..`, `${subscription()}0/resourceGroups/rg`]) {
        const response = await call('POST', '/roleAssignments', token, { assignee: 'id-storefront', role: 'Reader', scope });
        expect([scope, response.status, response.json?.error?.code]).toEqual([scope, 400, 'InvalidScope']);
      }
      // Through ARM a URL parser resolves plain dot segments before routing; percent-encoded slashes reach the scope as written.
      const path = `${namespace}/queues/orders%2F..%2F..%2F..%2F..%2F../providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`;
      const principalId = test.azure.directory.findIdentity('id-storefront')!.principalId;
      const roleDefinitionId = `${subscription()}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
      const response = await call('PUT', path, token, { properties: { roleDefinitionId, principalId } });
      expect([response.status, response.json?.error?.code]).toEqual([400, 'InvalidScope']);
      expect(assignments()).toBe(before);
    });
  });

  describe('when the operator assigns a role at a Service Bus entity', () => {
    const put = async (scope: string) => {
      const path = `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}?api-version=2022-04-01`;
      const principalId = test.azure.directory.findIdentity('id-storefront')!.principalId;
      const roleDefinitionId = `${subscription()}/providers/Microsoft.Authorization/roleDefinitions/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39`;
      const response = await call('PUT', path, await test.operatorToken(), { properties: { roleDefinitionId, principalId } });
      if (response.status === 201) await call('DELETE', path, await test.operatorToken());
      return response;
    };

    it('refuses a queue, topic or subscription that does not exist with 404 ResourceNotFound, through ARM and the CLI, and creates nothing', async () => {
      const namespace = test.azure.directory.resourceId('serviceBus');
      const name = namespace.split('/').pop()!;
      const before = assignments();
      for (const [scope, resource] of [
        [`${namespace}/queues/no-such-queue`, `Microsoft.ServiceBus/namespaces/${name}/queues/no-such-queue`],
        [`${namespace}/topics/no-such-topic`, `Microsoft.ServiceBus/namespaces/${name}/topics/no-such-topic`],
        [`${namespace}/topics/events/subscriptions/no-such-subscription`, `Microsoft.ServiceBus/namespaces/${name}/topics/events/subscriptions/no-such-subscription`],
        [`${namespace}/queues/orders/extra`, `Microsoft.ServiceBus/namespaces/${name}/queues/orders/extra`],
      ]) {
        const response = await put(scope!);
        expect([scope, response.status, response.json?.error]).toEqual([
          scope,
          404,
          { code: 'ResourceNotFound', message: `The Resource '${resource}' under resource group '${test.azure.directory.resourceGroupId.split('/').pop()}' was not found.` },
        ]);
        const cli = await call('POST', '/roleAssignments', await test.operatorToken(), { assignee: 'id-storefront', role: 'Reader', scope });
        expect([scope, cli.status, cli.json?.error?.code]).toEqual([scope, 404, 'ResourceNotFound']);
      }
      expect(assignments()).toBe(before);
    });

    it('accepts one that exists, whatever the case of its name, as ARM compares ids', async () => {
      const namespace = test.azure.directory.resourceId('serviceBus');
      for (const scope of [`${namespace}/queues/orders`, `${namespace}/topics/EVENTS`, `${namespace}/topics/events/subscriptions/all`]) {
        expect([scope, (await put(scope)).status]).toEqual([scope, 201]);
      }
    });
  });

  describe('when it tries the operator tools', () => {
    it.each([
      ['signing-key rotation', 'POST', '/signingKeys:rotate', undefined, 'Microsoft.LocalAzure/signingKeys/rotate/action'],
      ['fault injection', 'PUT', '/faults/identity-endpoint', { fault: 'stopped' }, 'Microsoft.LocalAzure/faults/write'],
      ['a Service Bus fault', 'PUT', '/faults/servicebus-connections', { fault: 'drop' }, 'Microsoft.LocalAzure/faults/write'],
    ])('allows %s to Owner only', async (_what, method, path, body, action) => {
      const keys = JSON.stringify(test.azure.keys.jwks());
      for (const who of ['contributor', 'access', 'reader']) {
        const response = await call(method, path, await test.operatorToken(who), body);
        expect(response.status).toBe(403);
        expect(response.json?.error?.message).toContain(`'${action}'`);
        expect(response.json?.error?.message).toContain('In the local Azure only the Owner role grants it.');
      }
      expect((await call(method, path, await serviceArmToken(), body)).status).toBe(403);
      expect(JSON.stringify(test.azure.keys.jwks())).toBe(keys);
      expect((await getToken('https://servicebus.azure.net')).status).toBe(200);
      // The operator may (a harmless fault: none).
      expect((await call('PUT', '/faults/identity-endpoint', await test.operatorToken(), { fault: 'none' })).status).toBe(200);
      expect(test.azure.faults.active()).toEqual([]);
    });

    it.each([
      ['peek', 'GET', '/servicebus/entities/orders/messages'],
      ['purge', 'DELETE', '/servicebus/entities/orders/messages'],
      ['resubmit', 'POST', '/servicebus/entities/orders/deadLetters:resubmit'],
    ])('allows Service Bus %s to Azure Service Bus Data Owner only', async (tool, method, path) => {
      // id-keyless holds Data Sender and Data Receiver on queues: not enough for an operator tool.
      for (const token of [await serviceArmToken(), await test.operatorToken('reader'), await test.operatorToken('contributor')]) {
        const response = await call(method, path, token);
        expect(response.status).toBe(403);
        expect(response.json?.error?.message).toContain(`'Microsoft.ServiceBus/namespaces/messages/${tool}/action'`);
      }
      expect((await call(method, path, await test.operatorToken())).status).toBe(200);
    });
  });

  describe('when it tries to read keys or secrets', () => {
    const secretsOf = (): string[] => [
      readFileSync(test.azure.home.homeCredentialFile, 'utf8').trim(),
      ...test.azure.directory.hosts().flatMap((host) => [host.identityHeader, host.imdsCapability]),
    ];
    const paths = [
      '/signingKeys',
      '/keys',
      '/tls/ca-key.pem',
      '/data/signing-keys.json',
      '/data/home-credential',
      '/../data/home-credential',
      '/%2e%2e/data/signing-keys.json',
      '/hosts',
      '/identities',
      '/tenant',
      '/logs/signIns',
      '/logs/authorizations',
    ];

    it('finds no route that serves a private key, the home credential, an identity header or an IMDS capability', async () => {
      const bodies: string[] = [];
      for (const token of [undefined, await serviceArmToken(), await test.operatorToken('reader'), await test.operatorToken()]) {
        for (const path of paths) bodies.push((await call('GET', path, token)).text);
      }
      for (const base of [env.AZURE_AUTHORITY_HOST!, `${env.IDENTITY_ENDPOINT!.split('/hosts/')[0]}`]) {
        for (const path of [`/${env.AZURE_TENANT_ID}/discovery/v2.0/keys`, `/${env.AZURE_TENANT_ID}/discovery/keys`, '/keys', '/hosts', '/imds']) {
          bodies.push(await (await fetch(`${base}${path}`)).text());
        }
      }
      const everything = bodies.join('\n');
      expect(everything).not.toMatch(/PRIVATE KEY|"d":|"p":|"q":/);
      for (const secret of secretsOf()) expect(everything).not.toContain(secret);
      // The public keys are there, so the probe did reach the endpoints.
      expect(everything).toContain(test.azure.keys.current.kid);
    });

    it('lets no cache store an answer: the portal sign-in link, a list, a refusal', async () => {
      const operator = await test.operatorToken();
      for (const [method, path, token] of [
        ['POST', '/portal/signInLinks', operator],
        ['GET', '/roleAssignments', operator],
        ['GET', '/hosts', undefined],
        ['GET', '/hosts', await serviceArmToken()],
      ] as const) {
        const response = await call(method, path, token);
        expect([path, response.status < 500, response.headers.get('cache-control'), response.headers.get('pragma')]).toEqual([path, true, 'no-store', 'no-cache']);
      }
    });

    it('refuses a list limit that is not a whole number from 1 to 1000 (-1 used to return every retained row), the peek’s too', async () => {
      const reader = await test.operatorToken('reader');
      const operator = await test.operatorToken();
      const [entity] = (await call('GET', '/servicebus/entities', operator)).json as unknown as { name: string }[];
      const peek = `/servicebus/entities/${encodeURIComponent(entity!.name)}/messages`;
      for (const [path, token] of [['/logs/signIns', reader], ['/logs/authorizations', reader], ['/alerts', reader], [peek, operator]] as const) {
        for (const limit of ['-1', '0', '1001', 'abc', '1.5', '']) {
          const response = await call('GET', `${path}?limit=${limit}`, token);
          expect([path, limit, response.status, response.json?.error?.code]).toEqual([path, limit, 400, 'InvalidFilter']);
          expect(response.json?.error?.message).toBe(`limit must be a whole number from 1 to 1000, not "${limit}".`);
        }
        const one = await call('GET', `${path}?limit=1`, token);
        expect([path, one.status, (one.json as unknown as unknown[]).length <= 1]).toEqual([path, 200, true]);
      }
    });

    it('refuses the service identity every read of the control plane, each with a log line', async () => {
      const token = await serviceArmToken();
      for (const path of ['/hosts', '/identities', '/resources', '/roleAssignments', '/roleDefinitions', '/logs/signIns', '/logs/authorizations', '/servicebus/entities']) {
        let response!: Awaited<ReturnType<typeof call>>;
        const lines = await logged(async () => (response = await call('GET', path, token)));
        expect([path, response.status, response.json?.error?.code]).toEqual([path, 403, 'AuthorizationFailed']);
        expect(lines).toEqual([expect.objectContaining({ identity: 'id-keyless', decision: 'denied' })]);
      }
    });
  });
});
