import { missingAppServiceSettings, undocumentedSettings } from '@keyless/testing';
import { gatewayEnvironmentSchema } from './gateway.config.js';

const required = {
  AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0',
  AZURE_TENANT_ID: '0b8ad1b5-7f4c-4a7e-9a47-0f5f3e2a1c11',
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net',
};

describe('gatewayEnvironmentSchema', () => {
  it('gives blank settings their defaults and leaves blank optional ones unset', () => {
    const env = gatewayEnvironmentSchema.parse({ ...required, PORT: '', HOST: '', GATEWAY_APP_ID: '', AZURE_AUTHORITY_HOST: '', REQUEST_TIMEOUT_MS: ' ', RATE_LIMIT_PER_MINUTE: '' });
    expect(env).toMatchObject({ PORT: 3000, HOST: '127.0.0.1', AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com', REQUEST_TIMEOUT_MS: 10_000, RATE_LIMIT_PER_MINUTE: 3000 });
    expect(env.GATEWAY_APP_ID).toBeUndefined();
  });

  it('still reports a required setting that is blank', () => {
    const result = gatewayEnvironmentSchema.safeParse({ ...required, AZURE_CLIENT_ID: '' });
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['AZURE_CLIENT_ID']);
  });

  it('refuses a headers timeout past the request timeout, naming both variables', () => {
    const result = gatewayEnvironmentSchema.safeParse({ ...required, HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '2000' });
    expect(result.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([expect.stringMatching(/^HTTP_HEADERS_TIMEOUT_MS: at most HTTP_REQUEST_TIMEOUT_MS \(2000\)/)]);
  });
});

describe('gatewayEnvironmentSchema in Azure', () => {
  it('requires only variables the App Services get from infra/ (a missing or misspelled one: gateway refuses to start there)', () => {
    expect(missingAppServiceSettings(gatewayEnvironmentSchema)).toEqual([]);
  });
});

describe('gatewayEnvironmentSchema in the README', () => {
  it("lists every variable in README.md's Configuration table, for gateway or all services", () => {
    expect(undocumentedSettings(gatewayEnvironmentSchema, 'gateway')).toEqual([]);
  });
});
