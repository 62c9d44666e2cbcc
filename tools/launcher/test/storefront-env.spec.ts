import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { launcherLocalAzureConfig } from '../src/system.js';

// The configuration the launcher writes for the local Azure, read by a real local Azure: the storefront's env file.
describe('launcherLocalAzureConfig', () => {
  let test: TestAzure;
  afterEach(() => test?.stop());

  it('gives the storefront GATEWAY_URLS with every gateway instance and GATEWAY_URL with the first', async () => {
    const urls = ['http://127.0.0.1:3000', 'http://127.0.0.1:3010', 'http://127.0.0.1:3020'];
    test = await startTestAzure({ config: launcherLocalAzureConfig(undefined, urls) });
    expect(test.azure.hostEnv('storefront')).toMatchObject({ GATEWAY_URL: urls[0], GATEWAY_URLS: urls.join(',') });
    expect(test.azure.hostEnv('gateway')).not.toHaveProperty('GATEWAY_URLS');
  });

  it("keeps the caller's extra configuration for the storefront", async () => {
    test = await startTestAzure({ config: launcherLocalAzureConfig({ hostEnv: { storefront: { EXTRA: 'kept' } } }, ['http://127.0.0.1:4000']) });
    expect(test.azure.hostEnv('storefront')).toMatchObject({ EXTRA: 'kept', GATEWAY_URL: 'http://127.0.0.1:4000', GATEWAY_URLS: 'http://127.0.0.1:4000' });
  });
});
