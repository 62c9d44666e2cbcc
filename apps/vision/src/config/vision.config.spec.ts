import { missingAppServiceSettings, undocumentedSettings } from '@keyless/testing';
import { visionEnvironmentSchema } from './vision.config.js';

describe('visionEnvironmentSchema', () => {
  it('gives blank settings their defaults and leaves blank optional ones unset', () => {
    const env = visionEnvironmentSchema.parse({
      AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0',
      AZURE_VISION_ENDPOINT: 'https://vision-x.cognitiveservices.azure.com',
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net',
      PGHOST: 'psql-x.postgres.database.azure.com',
      PGDATABASE: 'keyless',
      PGUSER: 'id-keyless',
      PGPORT: '',
      PORT: '',
      VISION_MAX_CONCURRENCY: '',
      AZURE_VISION_RESOURCE_ID: '',
    });
    expect(env).toMatchObject({ PORT: 3002, VISION_MAX_CONCURRENCY: 4, LOG_LEVEL: 'info', PGPORT: 5432, PGSSLMODE: 'verify-full' });
    expect(env.AZURE_VISION_RESOURCE_ID).toBeUndefined();
  });
});

describe('visionEnvironmentSchema in Azure', () => {
  it('requires only variables the App Services get from infra/ (a missing or misspelled one: vision refuses to start there)', () => {
    expect(missingAppServiceSettings(visionEnvironmentSchema)).toEqual([]);
  });
});

describe('visionEnvironmentSchema in the README', () => {
  it("lists every variable in README.md's Configuration table, for vision or all services", () => {
    expect(undocumentedSettings(visionEnvironmentSchema, 'vision')).toEqual([]);
  });
});
