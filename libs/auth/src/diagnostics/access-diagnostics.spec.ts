import { ServiceBusError } from '@azure/service-bus';
import { APIError } from 'openai';
import { TestMetrics } from '@keyless/local-azure/testing';
import { RecordingLogger } from '../../test/support/recording.logger.js';
import { resolveAuthOptions, type AuthModuleOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import { AccessDeniedError } from '../errors.js';
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

  describe('when the error is not an access refusal', () => {
    it.each([new Error('boom'), APIError.generate(429, { error: { code: '429', message: 'slow down' } }, undefined, new Headers()), new ServiceBusError('gone', 'MessagingEntityNotFound'), 'text', undefined])(
      'returns undefined for %p',
      (error) => {
        expect(diagnostics().explain(error)).toBeUndefined();
      },
    );
  });
});
