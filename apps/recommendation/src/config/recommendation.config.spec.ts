import { missingAppServiceSettings, undocumentedSettings } from '@keyless/testing';
import { recommendationEnvironmentSchema } from './recommendation.config.js';

const required = {
  AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0',
  AZURE_OPENAI_ENDPOINT: 'https://oai-x.openai.azure.com',
  AZURE_OPENAI_CHAT_DEPLOYMENT: 'gpt-4o-mini',
  AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: 'text-embedding-3-small',
  SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-x.servicebus.windows.net',
  PGHOST: 'psql-x.postgres.database.azure.com',
  PGDATABASE: 'keyless',
  PGUSER: 'id-keyless',
};

describe('recommendationEnvironmentSchema', () => {
  it('gives blank settings their defaults: never port 0, libpq\'s port and verify-full', () => {
    const env = recommendationEnvironmentSchema.parse({ ...required, PORT: '', PGPORT: '', PGSSLMODE: '', LOG_LEVEL: ' ', APPLICATIONINSIGHTS_CONNECTION_STRING: '', POSTGRES_SERVER_RESOURCE_ID: '' });
    expect(env).toMatchObject({ PORT: 3001, PGPORT: 5432, PGSSLMODE: 'verify-full', LOG_LEVEL: 'info' });
    expect(env.APPLICATIONINSIGHTS_CONNECTION_STRING).toBeUndefined();
    expect(env.POSTGRES_SERVER_RESOURCE_ID).toBeUndefined();
  });

  it('names every missing database setting, and refuses a PGSSLMODE that would send the token unverified', () => {
    const result = recommendationEnvironmentSchema.safeParse({ ...required, PGHOST: undefined, PGUSER: '', PGSSLMODE: 'require' });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => issue.path.join('.')).sort()).toEqual(['PGHOST', 'PGSSLMODE', 'PGUSER']);
    expect(result.error!.issues.find((issue) => issue.path[0] === 'PGSSLMODE')!.message).toMatch(/verify-full: the password is an access token/);
  });
});

describe('recommendationEnvironmentSchema in Azure', () => {
  it('requires only variables the App Services get from infra/ (a missing or misspelled one: recommendation refuses to start there)', () => {
    expect(missingAppServiceSettings(recommendationEnvironmentSchema)).toEqual([]);
  });
});

describe('recommendationEnvironmentSchema in the README', () => {
  it("lists every variable in README.md's Configuration table, for recommendation or all services", () => {
    expect(undocumentedSettings(recommendationEnvironmentSchema, 'recommendation')).toEqual([]);
  });
});
