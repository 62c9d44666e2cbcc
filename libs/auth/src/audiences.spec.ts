import { AuthConfigurationError } from './errors.js';
import { resolveAudience } from './audiences.js';

describe(resolveAudience.name, () => {
  describe('when given a well-known name', () => {
    it.each([
      ['cognitiveServices', 'https://cognitiveservices.azure.com/.default', 'https://cognitiveservices.azure.com'],
      ['serviceBus', 'https://servicebus.azure.net//.default', 'https://servicebus.azure.net/'],
      ['keyVault', 'https://vault.azure.net/.default', 'https://vault.azure.net'],
      ['resourceManager', 'https://management.azure.com/.default', 'https://management.azure.com'],
      ['postgres', 'https://ossrdbms-aad.database.windows.net/.default', 'https://ossrdbms-aad.database.windows.net'],
    ])('resolves %s to the scope the Azure SDKs request', (name, scope, resource) => {
      expect(resolveAudience(name)).toEqual({ key: name, scope, resource });
    });
  });

  describe('when given the scope an SDK requests', () => {
    it.each([
      ['https://cognitiveservices.azure.com/.default', 'cognitiveServices'],
      ['https://servicebus.azure.net//.default', 'serviceBus'],
      ['https://servicebus.azure.net/.default', 'serviceBus'],
      ['https://vault.azure.net/.default', 'keyVault'],
      ['https://management.azure.com/.default', 'resourceManager'],
      ['https://management.azure.com/', 'resourceManager'],
      ['https://ossrdbms-aad.database.windows.net/.default', 'postgres'],
      ['https://ossrdbms-aad.database.windows.net', 'postgres'],
    ])('maps %s to the %s audience', (scope, key) => {
      expect(resolveAudience(scope).key).toBe(key);
    });
  });

  describe('when given an application ID URI', () => {
    it.each(['api://keyless-gateway', 'api://keyless-gateway/.default'])('accepts %s and requests its /.default scope', (name) => {
      expect(resolveAudience(name)).toEqual({ key: 'api://keyless-gateway', scope: 'api://keyless-gateway/.default', resource: 'api://keyless-gateway' });
    });

    it('accepts an application id (GUID)', () => {
      expect(resolveAudience('4f2c9e1a-0d3b-4c55-9b7e-2a1f6c3d8e90').scope).toBe('4f2c9e1a-0d3b-4c55-9b7e-2a1f6c3d8e90/.default');
    });
  });

  describe('when given anything else', () => {
    it.each(['cognitive', 'https://example.com/.default', 'api://', ''])('throws AudienceUnknown for "%s" listing the accepted forms', (name) => {
      expect(() => resolveAudience(name)).toThrow(AuthConfigurationError);
      expect(() => resolveAudience(name)).toThrow(/use one of cognitiveServices, serviceBus, keyVault, resourceManager, postgres, an application ID URI/);
    });
  });
});
