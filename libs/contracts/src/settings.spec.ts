import { z } from 'zod';
import { serviceConfiguration, serviceSettings } from './service-settings.js';
import { readSetting, settingsSchema } from './settings.js';

describe(readSetting.name, () => {
  it('reads a set value as it is', () => {
    expect(readSetting({ HOME_DIR: ' /srv/x ' }, 'HOME_DIR')).toBe(' /srv/x ');
  });

  it.each([[''], ['   '], ['\t']])('reads the blank value %j as unset', (value) => {
    expect(readSetting({ HOME_DIR: value }, 'HOME_DIR')).toBeUndefined();
  });

  it('reads a missing variable as unset', () => {
    expect(readSetting({}, 'HOME_DIR')).toBeUndefined();
  });
});

describe(settingsSchema.name, () => {
  const schema = settingsSchema({
    PORT: z.coerce.number().int().min(1).default(3000),
    DATA_DIR: z.string().min(1).default('.data'),
    ENDPOINT: z.url().optional(),
    LEVEL: z.enum(['info', 'debug']).default('info'),
  });

  it('gives blank variables their defaults, and leaves blank optional ones absent', () => {
    expect(schema.parse({ PORT: '', DATA_DIR: ' ', ENDPOINT: '', LEVEL: '' })).toEqual({ PORT: 3000, DATA_DIR: '.data', LEVEL: 'info' });
  });

  it('still validates what is set', () => {
    expect(schema.parse({ PORT: '8080', ENDPOINT: 'https://example.test' })).toEqual({ PORT: 8080, DATA_DIR: '.data', ENDPOINT: 'https://example.test', LEVEL: 'info' });
    expect(schema.safeParse({ PORT: 'eighty' }).success).toBe(false);
  });
});

describe(`${settingsSchema.name} with the service settings`, () => {
  const schema = settingsSchema({ ...serviceSettings({ port: 3000 }) });
  const required = { AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0', SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net' };
  const problems = (settings: Record<string, string>): string[] => schema.safeParse({ ...required, ...settings }).error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) ?? [];

  it('refuses a headers timeout past the request timeout, naming both variables and what to change', () => {
    expect(problems({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '2000' })).toEqual([
      'HTTP_HEADERS_TIMEOUT_MS: at most HTTP_REQUEST_TIMEOUT_MS (2000): the headers are part of the request; lower HTTP_HEADERS_TIMEOUT_MS or raise HTTP_REQUEST_TIMEOUT_MS',
    ]);
  });

  it('compares with the default request timeout when only the headers timeout is set', () => {
    expect(problems({ HTTP_HEADERS_TIMEOUT_MS: '60000' })).toEqual([expect.stringMatching(/^HTTP_HEADERS_TIMEOUT_MS: at most HTTP_REQUEST_TIMEOUT_MS \(30000\)/)]);
  });

  it('reports it beside another invalid variable, and not when a timeout is itself invalid', () => {
    expect(problems({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '2000', LOG_LEVEL: 'loud' }).map((problem) => problem.split(':')[0])).toEqual(['LOG_LEVEL', 'HTTP_HEADERS_TIMEOUT_MS']);
    expect(problems({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: 'soon' }).map((problem) => problem.split(':')[0])).toEqual(['HTTP_REQUEST_TIMEOUT_MS']);
  });

  it("hands LOCAL_AZURE_HOME on as the configuration's localAzureHome, and a blank one as none (the default home)", () => {
    expect(serviceConfiguration(schema.parse({ ...required, LOCAL_AZURE_HOME: "/tmp/a b/it's" })).localAzureHome).toBe("/tmp/a b/it's");
    expect(serviceConfiguration(schema.parse({ ...required, LOCAL_AZURE_HOME: '' }))).not.toHaveProperty('localAzureHome');
  });

  it('takes equal timeouts', () => {
    expect(schema.parse({ ...required, HTTP_HEADERS_TIMEOUT_MS: '2000', HTTP_REQUEST_TIMEOUT_MS: '2000' })).toMatchObject({ HTTP_HEADERS_TIMEOUT_MS: 2000, HTTP_REQUEST_TIMEOUT_MS: 2000 });
  });
});
