import { ConfigError, loadConfigFile, parseConfig } from './local-azure-config.js';

describe('parseConfig', () => {
  it('fills every default: the three service hosts share id-keyless, the storefront calls the gateway', () => {
    const config = parseConfig({});
    expect(config.hosts.gateway).toEqual({ systemAssigned: false, userAssigned: ['id-keyless'], env: {} });
    expect(config.network).toEqual({
      bind: 'loopback',
      publicHost: 'localhost',
      limits: { httpHeadersTimeoutInMs: 10_000, httpRequestTimeoutInMs: 30_000, tlsHandshakeTimeoutInMs: 10_000 },
      ports: expect.objectContaining({ identity: 0, serviceBus: 0 }),
    });
    expect(config.tokenLifetimeSeconds).toBe(86_400);
    // IMDS's managed-identity limits per VM.
    expect(config.identityEndpoint).toEqual({ throttling: { requestsPerWindow: 20, windowInMs: 1000, maxConcurrentRequests: 5 } });
    expect(config.operator).toEqual({ name: 'operator', displayName: 'Local Azure operator' });
    expect(config).toMatchObject({ tenantDomain: 'keylesslocal.onmicrosoft.com', userTokenLifetimeSeconds: 3600, hostEnvDirs: {} });
    expect(config.users).toEqual({ reader: { displayName: 'Local Azure reader', roleAssignments: [{ role: 'Reader', scope: 'subscription' }] } });
  });

  it('takes further users with their role assignments', () => {
    const config = parseConfig({ users: { reader: { roleAssignments: [{ role: 'Reader', scope: 'subscription' }, { role: 'Azure Service Bus Data Receiver', scope: 'serviceBus/queues/replies' }] } } });
    expect(config.users.reader!.roleAssignments).toHaveLength(2);
  });

  it('reads the docker compose configuration: every interface, fixed ports, the compose host name', () => {
    const config = loadConfigFile(new URL('../../compose.config.json', import.meta.url).pathname);
    expect(config.network).toMatchObject({ bind: 'all', publicHost: 'local-azure', ports: { serviceBus: 5671 } });
    expect(config.hosts.storefront!.env.GATEWAY_URL).toBe('http://gateway:3000');
  });

  it('adds hostEnv variables to a host without replacing the default hosts', () => {
    const config = parseConfig({ hostEnv: { storefront: { GATEWAY_URL: 'http://127.0.0.1:3000' } } });
    expect(config.hosts.storefront!.env).toEqual({ GATEWAY_AUDIENCE: 'api://keyless-gateway', GATEWAY_URL: 'http://127.0.0.1:3000' });
    expect(Object.keys(config.hosts)).toEqual(['gateway', 'recommendation', 'vision', 'storefront']);
  });

  it('takes the identity endpoint\'s throttling, a test\'s short window included', () => {
    const config = parseConfig({ identityEndpoint: { throttling: { requestsPerWindow: 3, windowInMs: 400 } } });
    expect(config.identityEndpoint.throttling).toEqual({ requestsPerWindow: 3, windowInMs: 400, maxConcurrentRequests: 5 });
  });

  it('takes faults to inject from the start, as a mode or with a delay', () => {
    const config = parseConfig({ faults: { openai: '429', 'identity-endpoint': { mode: 'delay', delayInMs: 500 } } });
    expect(config.faults).toEqual({ openai: '429', 'identity-endpoint': { mode: 'delay', delayInMs: 500 } });
  });

  it.each([
    [{ hostEnv: { nowhere: { X: 'y' } } }, 'hostEnv.nowhere: no host named "nowhere"'],
    [{ hosts: { web: { userAssigned: ['id-missing'] } } }, 'hosts.web.userAssigned[0]: no identity named "id-missing"'],
    [{ tokenLifetimeSeconds: 5 }, 'tokenLifetimeSeconds:'],
    [{ hosts: { Web: {} } }, 'hosts.Web'],
    [{ appRoleAssignments: [{ identity: 'id-keyless', app: 'keyless-gateway', roles: ['Admin'] }] }, 'appRoleAssignments[0].roles[0]: "Admin" is not an app role of keyless-gateway'],
    [{ network: { ports: { identity: 70000 } } }, 'network.ports.identity'],
    [{ unknownField: true }, 'unknownField'],
    [{ faults: { openai: '503' } }, 'faults.openai: The fault target openai has no mode "503"'],
    [{ faults: { dns: 'error' } }, 'faults.dns: Unknown fault target "dns"'],
    [
      { resources: { openAi: { name: 'oai-x', deployments: { emb: { model: 'text-embedding-3-small', tokensPerMinute: 1000, backend: { url: 'http://127.0.0.1:8080/v1' } } } } } },
      'resources.openAi.deployments.emb.backend: only chat deployments forward to a model server',
    ],
    [{ resources: { openAi: { name: 'oai-x', deployments: { chat: { model: 'gpt-4o-mini', tokensPerMinute: 1000, backend: { url: 'ftp://model' } } } } } }, 'resources.openAi.deployments.chat.backend.url'],
    [{ users: { reader: { roleAssignments: [{ role: 'Storage Blob Data Reader', scope: 'subscription' }] } } }, 'users.reader.roleAssignments[0].role: "Storage Blob Data Reader" is not a built-in role'],
    [{ users: { reader: { roleAssignments: [{ role: 'Reader', scope: 'elsewhere' }] } } }, 'users.reader.roleAssignments[0].scope: "elsewhere" is not subscription, resourceGroup or <resource>'],
    [{ users: { operator: {} } }, 'users.operator: the operator is already a user'],
    [{ hostEnvDirs: { gateway: 'relative/dir' } }, 'hostEnvDirs.gateway: an absolute path'],
    [{ hostEnvDirs: { nowhere: '/x' } }, 'hostEnvDirs.nowhere: no host named "nowhere"'],
    // Node refuses to create a server whose headers timeout is past its request timeout: said here, not as its error at start.
    [{ network: { limits: { httpHeadersTimeoutInMs: 40_000 } } }, 'network.limits.httpHeadersTimeoutInMs: at most httpRequestTimeoutInMs'],
    [{ identityEndpoint: { throttling: { requestsPerWindow: 0 } } }, 'identityEndpoint.throttling.requestsPerWindow: at least 1 request'],
    [{ identityEndpoint: { throttling: { requestsPerWindow: 2.5 } } }, 'identityEndpoint.throttling.requestsPerWindow: a whole number of requests'],
    [{ identityEndpoint: { throttling: { windowInMs: 5 } } }, 'identityEndpoint.throttling.windowInMs: at least 10 ms'],
    [{ identityEndpoint: { throttling: { maxConcurrentRequests: 0 } } }, 'identityEndpoint.throttling.maxConcurrentRequests: at least 1 request'],
    [{ identityEndpoint: { throttling: { requestsPerSecond: 20 } } }, 'identityEndpoint.throttling: Unrecognized key: "requestsPerSecond"'],
  ])('refuses %j naming the entry and field', (input, message) => {
    expect(() => parseConfig(input as never, 'my-config.json')).toThrow(ConfigError);
    expect(() => parseConfig(input as never, 'my-config.json')).toThrow(new RegExp(`^my-config\\.json: .*${message.replace(/[[\].*"]/g, '\\$&')}`));
  });
});
