import { randomBytes, randomUUID } from 'node:crypto';
import { SecretSettingError } from '../errors.js';
import { assertNoSecretSettings, findSecretSettings } from './secret-settings.guard.js';

// Secret-looking values are generated per run; none is ever written down.
const secret = (): string => randomBytes(24).toString('base64');

describe(findSecretSettings.name, () => {
  describe('when a name matches a secret rule', () => {
    it.each([
      ['AZURE_OPENAI_API_KEY', /Azure OpenAI key/, /Set AZURE_OPENAI_ENDPOINT only/],
      ['AZURE_OPENAI_KEY', /Azure OpenAI key/, /Cognitive Services OpenAI User/],
      ['VISION_KEY', /Azure AI services key/, /Cognitive Services User/],
      ['SERVICEBUS_CONNECTION_STRING', /Service Bus connection string/, /SERVICEBUS_FULLY_QUALIFIED_NAMESPACE/],
      ['SERVICEBUS_SAS_KEY', /Service Bus connection string or SAS key/, /Data Sender/],
      ['AZURE_CLIENT_SECRET', /app registration secret/, /AZURE_CLIENT_ID alone names the user-assigned managed identity/],
      ['STORAGE_CONNECTION_STRING', /a connection string/, /grant that identity a role/],
      ['WEATHER_API_KEY', /an API key/, /grant that identity a role/],
      ['ACCOUNT_KEY', /a key/, /grant that identity a role/],
      ['DB_PASSWORD', /a secret or password/, /grant that identity a role/],
      ['PGPASSWORD', /a PostgreSQL password/, /Microsoft Entra token as the password/],
      ['PGPASSFILE', /a PostgreSQL password/, /PGUSER = the identity's name/],
    ])('reports %s with what to use instead', (name, reason, instead) => {
      const [found, ...rest] = findSecretSettings({ [name]: secret() });
      expect(rest).toEqual([]);
      expect(found!.name).toBe(name);
      expect(found!.reason).toMatch(reason);
      expect(found!.instead).toMatch(instead);
    });
  });

  describe('when a value carries a secret marker under an innocent name', () => {
    it.each([
      ['BUS', `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${secret()}`, 'SharedAccessKey='],
      ['STORAGE', `DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${secret()}`, 'AccountKey='],
      ['IMAGE_URL', `https://st.blob.core.windows.net/c/i.png?sv=2024-01-01&sig=${encodeURIComponent(secret())}`, 'a SAS signature (sig=)'],
      ['SIGNING', `-----BEGIN PRIVATE KEY-----\n${secret()}\n-----END PRIVATE KEY-----`, 'a private key'],
      ['DATABASE_URL', `postgres://app:${encodeURIComponent(secret())}@db.example.com:5432/keyless`, 'a password in a postgres:// URL'],
      ['PG_URL', `postgresql://app:${encodeURIComponent(secret())}@db.example.com/keyless?sslmode=verify-full`, 'a password in a postgres:// URL'],
      ['PG_CONNINFO', `host=db.example.com user=app password=${secret()} dbname=keyless`, 'password='],
    ])('reports %s by its value (%s)', (name, value, marker) => {
      expect(findSecretSettings({ [name]: value })).toEqual([expect.objectContaining({ name, reason: `its value contains ${marker}` })]);
    });
  });

  describe('when a name is allowed', () => {
    it('skips the name rule', () => {
      expect(findSecretSettings({ PARTITION_KEY: 'tenant' }, { allow: { PARTITION_KEY: 'a field name, not a key' } })).toEqual([]);
    });

    it('still checks the value', () => {
      const found = findSecretSettings({ PARTITION_KEY: `AccountKey=${secret()}` }, { allow: { PARTITION_KEY: 'a field name' } });
      expect(found).toEqual([expect.objectContaining({ name: 'PARTITION_KEY', reason: 'its value contains AccountKey=' })]);
    });
  });

  describe('when a setting is empty', () => {
    it('ignores it (an unset variable holds nothing)', () => {
      expect(findSecretSettings({ AZURE_OPENAI_API_KEY: '', AZURE_CLIENT_SECRET: '  ', X: undefined })).toEqual([]);
    });
  });

  describe('when the environment is a Keyless host\'s', () => {
    it('finds nothing in the variables the platform and the local Azure set', () => {
      expect(
        findSecretSettings({
          AZURE_CLIENT_ID: '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80',
          AZURE_TENANT_ID: '0b7f1d2e-5a4c-4e3b-8f9a-1c2d3e4f5a6b',
          IDENTITY_ENDPOINT: 'http://127.0.0.1:41566/msi/token/',
          IDENTITY_HEADER: randomBytes(16).toString('hex'),
          AZURE_AUTHORITY_HOST: 'https://localhost:8443',
          NODE_EXTRA_CA_CERTS: '/home/app/.local-azure/tls/ca.pem',
          AZURE_OPENAI_ENDPOINT: 'https://oai-keyless.openai.azure.com',
          AZURE_OPENAI_RESOURCE_ID: '/subscriptions/0/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/oai',
          SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-keyless.servicebus.windows.net',
          PGHOST: 'psql-keyless.postgres.database.azure.com',
          PGPORT: '5432',
          PGDATABASE: 'keyless',
          PGUSER: 'id-keyless',
          PGSSLMODE: 'verify-full',
          DATABASE_URL: 'postgres://id-keyless@psql-keyless.postgres.database.azure.com:5432/keyless?sslmode=verify-full',
          PWD: '/home/app',
          PATH: '/usr/bin',
        }),
      ).toEqual([]);
    });
  });

  describe("when the environment is App Service's", () => {
    // What App Service (Linux) puts into every app's environment besides the app settings: its own keys for its
    // authentication module, the identity header under its 2017 name too, and an APPSETTING_ copy of every setting.
    const appSettings = {
      AZURE_CLIENT_ID: '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80',
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: 'sb-keyless.servicebus.windows.net',
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${randomUUID()};IngestionEndpoint=https://example.invalid/`,
    };
    const identityHeader = randomBytes(16).toString('hex');
    const platform = {
      IDENTITY_ENDPOINT: 'http://169.254.129.2:8081/msi/token',
      IDENTITY_HEADER: identityHeader,
      MSI_ENDPOINT: 'http://169.254.129.2:8081/msi/token',
      MSI_SECRET: identityHeader,
      WEBSITE_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('hex').toUpperCase(),
      WEBSITE_AUTH_SIGNING_KEY: randomBytes(32).toString('hex').toUpperCase(),
      WEBSITE_AUTH_ENABLED: 'False',
      WEBSITE_SSH_PASSWORD: secret(),
      SSH_USER_PASSWORD: secret(),
      WEBSITE_SITE_NAME: 'app-gateway-abc',
      APPSETTING_WEBSITE_SITE_NAME: 'app-gateway-abc',
      ...Object.fromEntries(Object.entries(appSettings).map(([name, value]) => [`APPSETTING_${name}`, value])),
    };
    const allow = { APPLICATIONINSIGHTS_CONNECTION_STRING: 'routes telemetry only' };

    it('finds nothing in the variables the platform sets', () => {
      expect(findSecretSettings({ ...appSettings, ...platform }, { allow })).toEqual([]);
    });

    it('judges an APPSETTING_ copy as the setting it copies: a refused setting is reported once, under its own name', () => {
      const key = secret();
      const found = findSecretSettings({ ...appSettings, ...platform, AZURE_OPENAI_API_KEY: key, APPSETTING_AZURE_OPENAI_API_KEY: key }, { allow });
      expect(found.map((f) => f.name)).toEqual(['AZURE_OPENAI_API_KEY']);
    });

    it('judges an APPSETTING_ variable that copies nothing by its own name', () => {
      expect(findSecretSettings({ APPSETTING_DB_PASSWORD: secret() }).map((f) => f.name)).toEqual(['APPSETTING_DB_PASSWORD']);
      expect(findSecretSettings({ DB_PASSWORD: secret(), APPSETTING_DB_PASSWORD: secret() }).map((f) => f.name)).toEqual(['APPSETTING_DB_PASSWORD', 'DB_PASSWORD']);
    });

    it("still checks the platform's names' values", () => {
      const found = findSecretSettings({ MSI_SECRET: `AccountKey=${secret()}` });
      expect(found).toEqual([expect.objectContaining({ name: 'MSI_SECRET', reason: 'its value contains AccountKey=' })]);
    });
  });

  describe('when several variables hold secrets', () => {
    it('reports each once, sorted by name, without their values', () => {
      const values = [secret(), secret()];
      const found = findSecretSettings({ Z_API_KEY: values[0], A_CONNECTION_STRING: `Endpoint=x;SharedAccessKey=${values[1]}` });
      expect(found.map((f) => f.name)).toEqual(['A_CONNECTION_STRING', 'Z_API_KEY']);
      expect(JSON.stringify(found)).not.toContain(values[0]);
      expect(JSON.stringify(found)).not.toContain(values[1]);
    });
  });
});

describe(assertNoSecretSettings.name, () => {
  it('throws SecretSettingError listing every offending variable', () => {
    const run = () => assertNoSecretSettings({ AZURE_OPENAI_API_KEY: secret(), AZURE_CLIENT_SECRET: secret() });
    expect(run).toThrow(SecretSettingError);
    expect(run).toThrow(/2 setting\(s\)[\s\S]*AZURE_CLIENT_SECRET[\s\S]*AZURE_OPENAI_API_KEY/);
  });

  it('passes a clean environment', () => {
    expect(() => assertNoSecretSettings({ AZURE_CLIENT_ID: '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80' })).not.toThrow();
  });
});
