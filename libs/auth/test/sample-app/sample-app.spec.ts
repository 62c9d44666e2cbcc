import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { dataPlanes } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger } from '@keyless/testing';
import { AzureClientFactory } from '../../src/index.js';
import { AuthConfigurationError, SecretSettingError } from '../../src/diagnostics/index.js';
import { AzureClients, sampleAppModule } from './sample.app.js';

// One host per file: @azure/identity picks its managed-identity source once per process (test file).
describe('A sample Nest service wiring AuthModule like gateway, recommendation and vision (host "recommendation")', () => {
  let test: TestAzure;
  let env: Record<string, string>;

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes });
    env = test.enterHost('recommendation');
  });
  afterAll(() => test?.stop());

  async function withEnv<T>(overrides: Record<string, string>, run: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(overrides).map((key) => [key, process.env[key]]));
    Object.assign(process.env, overrides);
    try {
      return await run();
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  }

  describe('when the environment is the host\'s', () => {
    let app: INestApplication;
    let baseUrl: string;
    const logger = new RecordingLogger();

    beforeAll(async () => {
      app = await NestFactory.create(sampleAppModule(logger), { logger: false, abortOnError: false });
      await app.listen(0, '127.0.0.1');
      baseUrl = await app.getUrl();
    });
    afterAll(() => app?.close());

    it('holds a token for every declared audience before it listens', () => {
      const resources = test.azure.auditLog
        .signIns({ limit: 100 })
        .filter((s) => s.outcome === 'success')
        .map((s) => s.resource)
        .sort();
      expect(resources).toEqual(['https://cognitiveservices.azure.com', 'https://servicebus.azure.net/']);
    });

    it('logs the credential mode and client id at startup', () => {
      expect(logger.messages('log')).toEqual(
        expect.arrayContaining([
          `Azure credential: managed identity, user-assigned, client id ${env.AZURE_CLIENT_ID}.`,
          expect.stringMatching(/^Startup access check passed in \d+ ms: tokens held for serviceBus, cognitiveServices \(managed-identity, client id /),
        ]),
      );
    });

    it('reports the credential in /health with identity, audiences, soonest expiry', async () => {
      const response = await fetch(`${baseUrl}/health`);
      const body = (await response.json()) as { status: string; info: { auth: Record<string, unknown> } };
      expect(response.status).toBe(200);
      expect(body.status).toBe('ok');
      expect(body.info.auth).toMatchObject({
        status: 'up',
        identity: { mode: 'managed-identity', clientId: env.AZURE_CLIENT_ID, endpoint: env.IDENTITY_ENDPOINT },
        audiences: [
          { audience: 'serviceBus', valid: true, consecutiveFailures: 0 },
          { audience: 'cognitiveServices', valid: true, consecutiveFailures: 0 },
        ],
        soonestExpiry: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      expect(body.info.auth).not.toHaveProperty('lastFailure');
    });

    it('builds its clients from the host\'s endpoints', () => {
      const clients = app.get(AzureClients);
      // The SDK keeps the host name; the port stays in its connection settings.
      expect(clients.bus.fullyQualifiedNamespace).toBe(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!.split(':')[0]);
      expect(clients.openAi.baseURL).toBe(`${env.AZURE_OPENAI_ENDPOINT}/openai`);
      expect(clients.openAi.apiVersion).toBe(env.OPENAI_API_VERSION);
      expect(clients.openAi.deploymentName).toBe(env.AZURE_OPENAI_CHAT_DEPLOYMENT);
    });

    it('calls Azure OpenAI as the shared identity with the token acquired at startup', async () => {
      const signInsBefore = test.azure.auditLog.signIns({ limit: 100 }).length;
      const response = await fetch(`${baseUrl}/reply`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ reply: 'ok' });
      expect(test.azure.auditLog.authorizations({ limit: 10 })[0]).toMatchObject({
        resource: 'openAi',
        clientId: env.AZURE_CLIENT_ID,
        decision: 'allowed',
        role: 'Cognitive Services OpenAI User',
      });
      expect(test.azure.auditLog.signIns({ limit: 100 })).toHaveLength(signInsBefore);
    });

    it('publishes on the bus as the shared identity, its CBS token from the same cache', async () => {
      const signInsBefore = test.azure.auditLog.signIns({ limit: 100 }).length;
      const response = await fetch(`${baseUrl}/reply/publish`);
      expect(response.status).toBe(200);
      expect(test.azure.auditLog.authorizations({ limit: 10 }).find((d) => d.resource === 'serviceBus')).toMatchObject({
        clientId: env.AZURE_CLIENT_ID,
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/send/action',
        scope: `${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/topics/events`,
        decision: 'allowed',
      });
      expect(test.azure.auditLog.signIns({ limit: 100 })).toHaveLength(signInsBefore);
    });

    it('refuses a Service Bus connection string in place of the namespace', () => {
      const sas = randomBytes(32).toString('base64');
      const connectionString = `Endpoint=sb://${env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${sas}`;
      const create = () => app.get(AzureClientFactory).create('serviceBus', { fullyQualifiedNamespace: connectionString });
      expect(create).toThrow(SecretSettingError);
      expect(create).toThrow(/fullyQualifiedNamespace .*SharedAccessKey=.*pass the namespace host name/s);
      expect(create).not.toThrow(sas);
    });
  });

  describe('when the environment holds keys or connection strings', () => {
    it('refuses to boot, naming every such variable and what to use instead, never its value', async () => {
      const apiKey = randomBytes(24).toString('hex');
      const sas = randomBytes(32).toString('base64');
      const error = await withEnv(
        {
          AZURE_OPENAI_API_KEY: apiKey,
          SERVICEBUS_CONNECTION_STRING: `Endpoint=sb://${env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/;SharedAccessKeyName=send;SharedAccessKey=${sas}`,
        },
        () => NestFactory.create(sampleAppModule(new RecordingLogger()), { logger: false, abortOnError: false }).then(
          (app) => app.close(),
          (e: unknown) => e,
        ),
      );
      expect(error).toBeInstanceOf(SecretSettingError);
      expect((error as SecretSettingError).settings.map((s) => s.name)).toEqual(['AZURE_OPENAI_API_KEY', 'SERVICEBUS_CONNECTION_STRING']);
      const message = (error as Error).message;
      expect(message).toContain('AZURE_OPENAI_API_KEY (name looks like an Azure OpenAI key): remove it');
      expect(message).toContain('SERVICEBUS_CONNECTION_STRING (a Service Bus connection string or SAS key; its value contains SharedAccessKey=)');
      expect(message).toContain('SERVICEBUS_FULLY_QUALIFIED_NAMESPACE');
      expect(message).not.toContain(apiKey);
      expect(message).not.toContain(sas);
    });
  });

  describe('when AZURE_CLIENT_ID is not a client id', () => {
    it('refuses to boot with ClientIdMalformed before any token request', async () => {
      const before = test.azure.auditLog.signIns({ limit: 100 }).length;
      const error = await withEnv({ AZURE_CLIENT_ID: 'id-keyless' }, () =>
        NestFactory.create(sampleAppModule(new RecordingLogger()), { logger: false, abortOnError: false }).then(
          (app) => app.close(),
          (e: unknown) => e,
        ),
      );
      expect(error).toBeInstanceOf(AuthConfigurationError);
      expect(error).toMatchObject({ code: 'ClientIdMalformed' });
      expect((error as Error).message).toContain('"id-keyless" is not a client id (that looks like the identity\'s name)');
      expect(test.azure.auditLog.signIns({ limit: 100 })).toHaveLength(before);
    });
  });
});
