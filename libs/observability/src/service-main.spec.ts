import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { isAuthError } from '@keyless/auth';
import { startService } from './service-main.js';
import type { Telemetry } from './telemetry.js';

// Secret-looking values are generated per run; none is ever written down.
const secret = (): string => randomBytes(24).toString('base64');
const telemetry: Telemetry = { exportToAzureMonitor: () => undefined, shutdown: () => Promise.resolve() };

/** Starts with `env`; the app factory records that it ran and fails, so nothing listens. */
async function start(env: Record<string, string>): Promise<{ error: unknown; built: boolean }> {
  let built = false;
  const error = await startService({
    name: 'test',
    env,
    telemetry,
    configKey: 'test',
    createApp: (): Promise<INestApplication> => {
      built = true;
      return Promise.reject(new Error('not built in this test'));
    },
  }).catch((e: unknown) => e);
  return { error, built };
}

describe(startService.name, () => {
  describe('when the environment holds a key or a connection string', () => {
    it.each(['AZURE_OPENAI_API_KEY', 'SERVICEBUS_CONNECTION_STRING', 'PGPASSWORD'])('refuses %s before the app is built', async (name) => {
      const { error, built } = await start({ AZURE_CLIENT_ID: '5ab33c32-3a9a-40c9-9c78-5a5f6d9427f0', [name]: secret() });
      expect(isAuthError(error) && error.code).toBe('SecretSetting');
      expect((error as Error).message).toContain(name);
      expect(built).toBe(false);
    });
  });

  it('lets the Application Insights connection string through (it routes telemetry only) and builds the app', async () => {
    const { error, built } = await start({ APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${randomBytes(16).toString('hex')};IngestionEndpoint=https://example.invalid/` });
    expect(error).toMatchObject({ message: 'not built in this test' });
    expect(built).toBe(true);
  });

  it("builds the app in App Service's environment: its own keys, MSI_SECRET and the APPSETTING_ copies are the platform's, not settings", async () => {
    const connectionString = `InstrumentationKey=${randomBytes(16).toString('hex')};IngestionEndpoint=https://example.invalid/`;
    const identityHeader = randomBytes(16).toString('hex');
    const { error, built } = await start({
      APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
      APPSETTING_APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
      IDENTITY_HEADER: identityHeader,
      MSI_SECRET: identityHeader,
      WEBSITE_AUTH_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      WEBSITE_AUTH_SIGNING_KEY: randomBytes(32).toString('hex'),
    });
    expect(error).toMatchObject({ message: 'not built in this test' });
    expect(built).toBe(true);
  });
});
