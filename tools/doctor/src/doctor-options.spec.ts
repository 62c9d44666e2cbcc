import { inflateSync } from 'node:zlib';
import { probeImage } from './probe-image.js';
import { DoctorError, readDoctorOptions } from './doctor-options.js';

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

  it.each([
    [{}, [], 'IdentityNotConfigured', /AZURE_CLIENT_ID is not set/],
    [{ AZURE_CLIENT_ID: '  ' }, [], 'IdentityNotConfigured', /AZURE_CLIENT_ID is not set/],
    [{ AZURE_CLIENT_ID: clientId }, ['--granted-at', 'yesterday'], 'ArgumentInvalid', /--granted-at needs an ISO date and time .* got "yesterday"/],
    [{ AZURE_CLIENT_ID: clientId }, ['--granted-at'], 'ArgumentInvalid', /--granted-at needs an ISO date and time/],
    [{ AZURE_CLIENT_ID: clientId }, ['-j'], 'ArgumentInvalid', /Unknown argument "-j"/],
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
