import { ServiceBusError } from '@azure/service-bus';
import { APIError } from 'openai';
import { DatabaseError } from 'pg';
import { TestMetrics } from '@keyless/local-azure/testing';
import { npmAsTyped, RecordingLogger } from '@keyless/testing';
import { resolveAuthOptions, type AuthModuleOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { AccessDeniedError, DatabaseAccessDeniedError } from '../errors.js';
import { AccessDiagnostics } from './access-diagnostics.js';

const clientId = '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80';
const objectId = '0f3e6c1d-8a2b-4d5e-9f70-1a2b3c4d5e6f';
const rg = '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-keyless';
const openAiId = `${rg}/providers/Microsoft.CognitiveServices/accounts/oai-keyless`;
const visionId = `${rg}/providers/Microsoft.CognitiveServices/accounts/vision-keyless`;
const namespaceId = `${rg}/providers/Microsoft.ServiceBus/namespaces/sb-keyless`;

function diagnostics(overrides: Partial<AuthModuleOptions> = {}): AccessDiagnostics {
  const options = resolveAuthOptions({
    clientId,
    logger: new RecordingLogger(),
    resources: {
      openAi: { endpoint: 'https://oai-keyless.openai.azure.com', resourceId: openAiId },
      vision: { endpoint: 'https://vision-keyless.cognitiveservices.azure.com', resourceId: visionId },
      serviceBus: { fullyQualifiedNamespace: 'sb-keyless.servicebus.windows.net', resourceId: namespaceId },
    },
    ...overrides,
  });
  return new AccessDiagnostics(options, new AzureIdentityService(options));
}

// The errors are built by the SDKs themselves from Azure's documented answers.
const openAiPermissionDenied = (message: string, status = 401) =>
  APIError.generate(status, { error: { code: 'PermissionDenied', message } }, undefined, new Headers());

describe(AccessDiagnostics.name, () => {
  describe('when Azure OpenAI answers 401 PermissionDenied naming the data action', () => {
    const error = openAiPermissionDenied(
      `The principal \`${objectId}\` lacks the required data action \`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action\` to perform \`POST /openai/deployments/{deployment-id}/chat/completions\` operation.`,
    );

    it('names principal, data action, least-privileged role, scope and the fix commands', () => {
      const denied = diagnostics().explain(error, { resource: 'openAi' });
      expect(denied).toBeInstanceOf(AccessDeniedError);
      expect(denied).toMatchObject({
        code: 'AccessDenied',
        principal: { type: 'ServicePrincipal', clientId, objectId },
        resource: 'openAi',
        dataAction: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
        role: { name: 'Cognitive Services OpenAI User', id: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' },
        scope: openAiId,
        fixCommand: `az role assignment create --assignee-object-id ${objectId} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope ${openAiId}`,
        localFixCommand: `npm run local-azure -- role assignment create --assignee-object-id ${objectId} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope ${openAiId}`,
      });
      expect(denied!.cause).toBe(error);
      expect(denied!.message).toContain(`identity ${clientId} (object id ${objectId}) lacks the data action`);
      expect(denied!.message).toContain('New role assignments can take several minutes to apply in Azure');
    });

    it('is recognised without a hint from the message', () => {
      expect(diagnostics().explain(error)?.resource).toBe('openAi');
    });

    it('counts the denial on keyless.auth.access.denials, with resource, role and data action (what the Azure alert queries)', async () => {
      const metrics = new TestMetrics();
      diagnostics({ meterProvider: metrics.provider }).explain(error, { resource: 'openAi' });
      await expect(
        metrics.sum('keyless.auth.access.denials', { resource: 'openAi', role: 'Cognitive Services OpenAI User', data_action: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action' }),
      ).resolves.toBe(1);
    });
  });

  describe('when Azure OpenAI answers the older "Principal does not have access to API/Operation."', () => {
    it('names the OpenAI User role without a data action', () => {
      const denied = diagnostics().explain(openAiPermissionDenied('Principal does not have access to API/Operation.'), { resource: 'openAi' });
      expect(denied).toMatchObject({ role: { name: 'Cognitive Services OpenAI User' }, scope: openAiId });
      expect(denied?.dataAction).toBeUndefined();
      expect(denied?.fixCommand).toContain(`--assignee-object-id <object id of ${clientId}>`);
    });
  });

  describe('when Azure OpenAI answers 403 PermissionDenied', () => {
    it('is explained the same way', () => {
      const denied = diagnostics().explain(openAiPermissionDenied('Principal does not have access to API/Operation.', 403), { resource: 'openAi' });
      expect(denied?.role.name).toBe('Cognitive Services OpenAI User');
    });
  });

  describe('when a 401 is a token problem, not a role problem', () => {
    it('leaves it alone (no role assignment fixes an expired or wrong-audience token)', () => {
      const error = APIError.generate(
        401,
        { statusCode: 401, message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' },
        undefined,
        new Headers(),
      );
      expect(diagnostics().explain(error, { resource: 'openAi' })).toBeUndefined();
    });
  });

  describe('when Vision answers 401 PermissionDenied', () => {
    it('names the Cognitive Services User role and the image analysis data action', () => {
      const body = JSON.stringify({ error: { code: 'PermissionDenied', message: 'Principal does not have access to API/Operation.' } });
      const denied = diagnostics().explainResponse('vision', 401, body);
      expect(denied).toMatchObject({
        resource: 'vision',
        dataAction: 'Microsoft.CognitiveServices/accounts/ComputerVision/imageanalysis:analyze/action',
        role: { name: 'Cognitive Services User', id: 'a97b65f3-24c7-4388-baec-2e87135dc908' },
        scope: visionId,
      });
    });

    it('ignores other statuses and other 401s', () => {
      expect(diagnostics().explainResponse('vision', 400, '{"error":{"code":"InvalidRequest","message":"bad image"}}')).toBeUndefined();
      expect(diagnostics().explainResponse('vision', 401, '{"error":{"code":"401","message":"Access denied due to invalid subscription key"}}')).toBeUndefined();
    });
  });

  describe('when Service Bus refuses a send for lack of the Send claim', () => {
    const error = new ServiceBusError(
      "Unauthorized access. 'Send' claim(s) are required to perform this operation. Resource: 'sb://sb-keyless.servicebus.windows.net/vision-requests'. TrackingId:abc, SystemTracker:gateway, Timestamp:2026-01-01T00:00:00",
      'UnauthorizedAccess',
    );

    it('names Data Sender and, given the entity kind, the queue scope', () => {
      const denied = diagnostics().explain(error, { entity: { kind: 'queue', name: 'vision-requests' } });
      expect(denied).toMatchObject({
        resource: 'serviceBus',
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/send/action',
        role: { name: 'Azure Service Bus Data Sender', id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' },
        scope: `${namespaceId}/queues/vision-requests`,
      });
      expect(denied?.fixCommand).toContain(`--scope ${namespaceId}/queues/vision-requests`);
    });

    it('explains the SDK\'s AggregateError after its retries by the last attempt, which becomes the cause', () => {
      const denied = diagnostics().explain(new AggregateError([error, error], ''), { entity: { kind: 'queue', name: 'vision-requests' } });
      expect(denied).toMatchObject({ role: { name: 'Azure Service Bus Data Sender' }, scope: `${namespaceId}/queues/vision-requests` });
      expect(denied?.cause).toBe(error);
    });

    it('falls back to the namespace scope when the entity kind is unknown (a queue and a topic look alike)', () => {
      expect(diagnostics().explain(error)?.scope).toBe(namespaceId);
    });
  });

  describe('when the refusal names the entity\'s ARM id (the local broker does)', () => {
    it('takes the entity scope from it', () => {
      const error = new ServiceBusError(
        `Unauthorized access. 'Send' claim(s) are required to perform this operation. Resource: 'sb://sb-keyless.servicebus.windows.net/events'. No role grants the send data action on ${namespaceId}/topics/events or an enclosing scope.`,
        'UnauthorizedAccess',
      );
      expect(diagnostics().explain(error)).toMatchObject({ role: { name: 'Azure Service Bus Data Sender' }, scope: `${namespaceId}/topics/events` });
    });
  });

  describe('when Service Bus refuses a receive on a subscription', () => {
    it('names Data Receiver and the subscription scope read from the error', () => {
      const error = new ServiceBusError(
        "Unauthorized access. 'Listen' claim(s) are required to perform this operation. Resource: 'sb://sb-keyless.servicebus.windows.net/events/subscriptions/vision'.",
        'UnauthorizedAccess',
      );
      expect(diagnostics().explain(error)).toMatchObject({
        role: { name: 'Azure Service Bus Data Receiver' },
        dataAction: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
        scope: `${namespaceId}/topics/events/subscriptions/vision`,
      });
    });
  });

  describe('when the resource id is not configured', () => {
    it('shows a placeholder scope', () => {
      const denied = diagnostics({ resources: {} }).explain(openAiPermissionDenied('Principal does not have access to API/Operation.'), { resource: 'openAi' });
      expect(denied?.scope).toBeUndefined();
      expect(denied?.fixCommand).toContain('--scope <ARM id of the openAi resource>');
    });
  });

  describe('in developer mode', () => {
    it('assigns to the signed-in user', () => {
      const denied = diagnostics({ mode: 'azure-cli' }).explain(
        openAiPermissionDenied(`The principal \`${objectId}\` lacks the required data action \`Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action\` to perform \`POST /openai/deployments/{deployment-id}/embeddings\` operation.`),
        { resource: 'openAi' },
      );
      expect(denied).toMatchObject({ principal: { type: 'User', objectId } });
      expect(denied?.fixCommand).toContain('--assignee-principal-type User');
    });
  });

  describe('when the service runs against a local Azure home other than the default one (localAzureHome)', () => {
    const home = "/tmp/keyless copy/it's $HOME";
    const error = openAiPermissionDenied(`The principal \`${objectId}\` lacks the required data action \`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action\`.`);

    it('prints a local fix command that, typed into a shell as printed, runs the local Azure CLI on that home', () => {
      const denied = diagnostics({ localAzureHome: home }).explain(error, { resource: 'openAi' })!;
      const { args, env } = npmAsTyped(denied.localFixCommand, ['LOCAL_AZURE_HOME']);
      expect(env.LOCAL_AZURE_HOME).toBe(home);
      expect(args).toEqual(['run', 'local-azure', '--', 'role', 'assignment', 'create', '--assignee-object-id', objectId, '--assignee-principal-type', 'ServicePrincipal', '--role', 'Cognitive Services OpenAI User', '--scope', openAiId]);
      expect(denied.message).toContain(`local Azure: ${denied.localFixCommand}`);
    });

    it('leaves the az command as it is', () => {
      expect(diagnostics({ localAzureHome: home }).explain(error, { resource: 'openAi' })!.fixCommand).toMatch(/^az role assignment create /);
    });
  });

  describe('when the error is not an access refusal', () => {
    it.each([new Error('boom'), APIError.generate(429, { error: { code: '429', message: 'slow down' } }, undefined, new Headers()), new ServiceBusError('gone', 'MessagingEntityNotFound'), 'text', undefined])(
      'returns undefined for %p',
      (error) => {
        expect(diagnostics().explain(error)).toBeUndefined();
      },
    );
  });
});

// The server's refusals as node-postgres surfaces them: a DatabaseError with Azure's texts (or PostgreSQL's stock
// 28P01), for a sign-in that sent an (unsigned, generated here) token with the identity's claims.
describe(`${AccessDiagnostics.name} of a PostgreSQL sign-in`, () => {
  const serverId = `${rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-keyless`;
  const signIn = { host: 'psql-keyless.postgres.database.azure.com', port: 5432, database: 'keyless', user: 'id-keyless' };
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const token = (claims: object) => `${part({ alg: 'none' })}.${part({ oid: objectId, appid: clientId, tid: '0b7f1d2e-5a4c-4e3b-8f9a-1c2d3e4f5a6b', ...claims })}.`;
  const refusal = (message: string, code: string) => Object.assign(new DatabaseError(message, message.length, 'error'), { code, severity: 'FATAL' });
  const postgres = { host: signIn.host, database: 'keyless', user: 'id-keyless', resourceId: serverId };

  describe('when the server has no principal for the identity', () => {
    const error = refusal('password authentication failed for user "id-keyless"', '28P01');

    it('names the identity, the server and both fixes', () => {
      const denied = diagnostics({ resources: { postgres } }).explainDatabase(error, { ...signIn, token: token({ aud: 'https://ossrdbms-aad.database.windows.net' }) });
      expect(denied).toBeInstanceOf(DatabaseAccessDeniedError);
      expect(denied).toMatchObject({ code: 'DatabaseAccessDenied', reason: 'PrincipalMissing', principal: { clientId, objectId, type: 'ServicePrincipal' }, user: 'id-keyless' });
      expect(denied!.cause).toBe(error);
      expect(denied!.message).toContain(`Database access denied by PostgreSQL psql-keyless.postgres.database.azure.com:5432 (database "keyless") to identity ${clientId} (object id ${objectId})`);
      expect(denied!.fix).toContain(`az postgres flexible-server microsoft-entra-admin create --resource-group rg-keyless --server-name psql-keyless --display-name id-keyless --object-id ${objectId} --type ServicePrincipal`);
      expect(denied!.fix).toContain(`SELECT * FROM pgaadauth_create_principal_with_oid('id-keyless', '${objectId}', 'service', true, false);`);
      expect(denied!.localFix).toMatch(/infra\/access\.json/);
      expect(denied!.detail).toBe('28P01: password authentication failed for user "id-keyless"');
    });

    it('names the local Azure home in the commands of the local fix, each running as typed', () => {
      const home = "/tmp/keyless copy/it's $HOME";
      const denied = diagnostics({ resources: { postgres }, localAzureHome: home }).explainDatabase(error, { ...signIn, token: token({}) });
      const commands = [...denied!.localFix.matchAll(/`([^`]+)`/g)].map((match) => npmAsTyped(match[1]!, ['LOCAL_AZURE_HOME']));
      expect(commands).toEqual([
        { args: ['start'], env: { LOCAL_AZURE_HOME: home } },
        { args: ['run', 'local-azure'], env: { LOCAL_AZURE_HOME: home } },
      ]);
    });

    it('takes the server name from the host when the resource id is not configured', () => {
      const denied = diagnostics().explainDatabase(error, { ...signIn, token: token({}) });
      expect(denied!.fix).toContain('--resource-group <resource group> --server-name psql-keyless');
    });
  });

  describe.each([
    ['AudienceInvalid', 'The access token does not have a valid audience claim. Please acquire a new token for the resource "https://ossrdbms-aad.database.windows.net".', /token for https:\/\/ossrdbms-aad\.database\.windows\.net.*was for https:\/\/vault\.azure\.net/],
    ['TokenExpired', 'The access token has expired. Acquire a new token and try again.', /clocks/],
    ['TokenInvalid', "The access token doesn't have a valid oid claim. Acquire a new token and try again", /managed identity's own access token/],
    ['TokenInvalid', 'The access token has invalid format. Please ensure the token is passed exactly as returned by the authentication endpoint and retry.', /no other token, no password/],
  ])('when the server refuses the token (%s)', (reason, message, fix) => {
    it('says why and what to do', () => {
      const denied = diagnostics().explainDatabase(refusal(message, '28000'), { ...signIn, token: token({ aud: 'https://vault.azure.net' }) });
      expect(denied).toMatchObject({ reason, user: 'id-keyless' });
      expect(denied!.fix).toMatch(fix);
    });
  });

  describe('when the sign-in failed for another reason', () => {
    it.each([
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('self-signed certificate in certificate chain'),
      refusal('no pg_hba.conf entry for host "10.0.0.4", user "id-keyless", database "keyless", no encryption', '28000'),
      refusal('the database system is starting up', '57P03'),
    ])('returns undefined for %p', (error) => {
      expect(diagnostics().explainDatabase(error, signIn)).toBeUndefined();
    });
  });
});
