import { inflateSync } from 'node:zlib';
import { probeImage } from './probe-image.js';
import { DoctorError, readDoctorOptions, wantsJson } from './doctor-options.js';

const clientId = '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0';

describe(readDoctorOptions.name, () => {
  it('reads the endpoints, resource ids and deployments the services read', () => {
    const options = readDoctorOptions({
      AZURE_CLIENT_ID: clientId,
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net',
      SERVICEBUS_NAMESPACE_RESOURCE_ID: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ServiceBus/namespaces/sb-x',
      AZURE_OPENAI_ENDPOINT: 'https://oai-x.openai.azure.com',
      AZURE_OPENAI_CHAT_DEPLOYMENT: 'gpt-4o-mini',
      AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com',
    });
    expect(options).toMatchObject({
      clientId,
      serviceBus: { fullyQualifiedNamespace: 'sb-x.servicebus.windows.net', resourceId: expect.stringContaining('/namespaces/sb-x') },
      openAi: { endpoint: 'https://oai-x.openai.azure.com', chatDeployment: 'gpt-4o-mini' },
      localAzure: false,
    });
    expect(options.vision).toBeUndefined();
    expect(options.openAi?.embeddingsDeployment).toBeUndefined();
  });

  it('recognises the local Azure by its authority host', () => {
    expect(readDoctorOptions({ AZURE_CLIENT_ID: clientId, AZURE_AUTHORITY_HOST: 'https://localhost:41234' }).localAzure).toBe(true);
  });

  it('reads the ARM id of every resource of access.json from its *_RESOURCE_ID variable', () => {
    const id = (type: string): string => `/subscriptions/s/resourceGroups/g/providers/${type}`;
    const options = readDoctorOptions({
      AZURE_CLIENT_ID: clientId,
      SERVICEBUS_NAMESPACE_RESOURCE_ID: id('Microsoft.ServiceBus/namespaces/sb'),
      AZURE_OPENAI_RESOURCE_ID: id('Microsoft.CognitiveServices/accounts/oai'),
      AZURE_KEY_VAULT_RESOURCE_ID: id('Microsoft.KeyVault/vaults/kv'),
      APPLICATIONINSIGHTS_RESOURCE_ID: ' ',
    });
    expect(options.resourceIds).toEqual({ serviceBus: id('Microsoft.ServiceBus/namespaces/sb'), openAi: id('Microsoft.CognitiveServices/accounts/oai'), keyVault: id('Microsoft.KeyVault/vaults/kv') });
  });

  describe('the Azure Resource Manager endpoint', () => {
    it.each([
      ['App Service (no authority set)', {}, 'https://management.azure.com'],
      ["Azure's public cloud", { AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/' }, 'https://management.azure.com'],
      ['the variable, without its trailing slash', { AZURE_RESOURCE_MANAGER_ENDPOINT: 'https://localhost:41235/', AZURE_AUTHORITY_HOST: 'https://localhost:41234' }, 'https://localhost:41235'],
      ['nothing against the local Azure without the variable', { AZURE_AUTHORITY_HOST: 'https://localhost:41234' }, undefined],
      ['nothing in a sovereign cloud without the variable', { AZURE_AUTHORITY_HOST: 'https://login.chinacloudapi.cn' }, undefined],
    ])('is %s', (_case, env, endpoint) => {
      expect(readDoctorOptions({ AZURE_CLIENT_ID: clientId, ...env }).resourceManagerEndpoint).toBe(endpoint);
    });
  });

  it.each([
    [[], { checkAccess: false, output: 'table' }],
    [['--check-access'], { checkAccess: true, output: 'table' }],
    [['--json'], { checkAccess: false, output: 'json' }],
    [['--check-access', '--output', 'json'], { checkAccess: true, output: 'json' }],
    [['--output=json'], { checkAccess: false, output: 'json' }],
    [['-o', 'table', '--check-access'], { checkAccess: true, output: 'table' }],
  ])('reads %j as %j', (args, expected) => {
    expect(readDoctorOptions({ AZURE_CLIENT_ID: clientId }, args)).toMatchObject(expected);
  });

  it.each([
    [{}, [], 'IdentityNotConfigured', /AZURE_CLIENT_ID is not set/],
    [{ AZURE_CLIENT_ID: '  ' }, [], 'IdentityNotConfigured', /AZURE_CLIENT_ID is not set/],
    [{ AZURE_CLIENT_ID: clientId }, ['--granted-at', 'yesterday'], 'ArgumentInvalid', /--granted-at needs an ISO date and time .* got "yesterday"/],
    [{ AZURE_CLIENT_ID: clientId }, ['--granted-at'], 'ArgumentInvalid', /--granted-at needs an ISO date and time/],
    [{ AZURE_CLIENT_ID: clientId }, ['-j'], 'ArgumentInvalid', /Unknown argument "-j"/],
    [{ AZURE_CLIENT_ID: clientId }, ['--output', 'yaml'], 'ArgumentInvalid', /--output takes json or table, got "yaml"\. Usage: npm run doctor -- .*\[--check-access\]/],
    [{ AZURE_CLIENT_ID: clientId }, ['--output'], 'ArgumentInvalid', /--output takes json or table, got ""/],
  ])('refuses %j %j with %s', (env, args, code, message) => {
    const run = (): unknown => readDoctorOptions(env, args);
    expect(run).toThrow(DoctorError);
    expect(run).toThrow(message);
    try {
      run();
    } catch (error) {
      expect((error as DoctorError).code).toBe(code);
    }
  });
});

describe(wantsJson.name, () => {
  it.each([
    [['--json'], true],
    [['--check-access', '--output', 'json'], true],
    [['--output=json'], true],
    [['-o', 'json'], true],
    [['--output', 'table'], false],
    [['--output'], false],
    [['json'], false],
  ])('%j → %s', (args, expected) => {
    expect(wantsJson(args)).toBe(expected);
  });
});

describe(probeImage.name, () => {
  it('is a 64×64 truecolour PNG whose pixels decode (Image Analysis needs more than 50 pixels a side)', () => {
    const png = Buffer.from(probeImage());
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.readUInt32BE(16)).toBe(64);
    expect(png.readUInt32BE(20)).toBe(64);
    const idatLength = png.readUInt32BE(33);
    expect(png.subarray(37, 41).toString('ascii')).toBe('IDAT');
    expect(inflateSync(png.subarray(41, 41 + idatLength))).toHaveLength(64 * (1 + 64 * 3));
  });
});
