import { jest } from '@jest/globals';
import { getBearerTokenProvider, ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { join } from 'node:path';
import { AzureOpenAI } from 'openai';
import type { CommonAlertPayload } from '../../src/alerts/common-alert-schema.js';
import type { Alert } from '../../src/alerts/alert-store.js';
import type { DeliveryStatus } from '../../src/alerts/webhook-notifier.js';
import type { AdminClient } from '../../src/cli/admin-client.js';
import { repoRoot } from '../../src/config/local-azure-config.js';
import { openAiDataPlane } from '../../src/openai/openai-data-plane.js';
import { dataActions, findRole } from '../../src/rbac/built-in-roles.js';
import { serviceBusDataPlane } from '../../src/servicebus/service-bus-data-plane.js';
import { runToEnd, startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { eventually, receiveExactly, shortRetries, testTopologyFile } from '../servicebus/support.js';
import { WebhookReceiver } from './webhook-receiver.js';

const essentials = (payload: CommonAlertPayload) => payload.data.essentials;
const isRule = (rule: string, condition: 'Fired' | 'Resolved') => (payload: CommonAlertPayload) =>
  payload.data.customProperties?.rule === rule && essentials(payload).monitorCondition === condition;

describe('Alerts of the local Azure', () => {
  let test: TestAzure;
  let webhook: WebhookReceiver;
  let admin: AdminClient;
  let principalId: string;
  let openAi: AzureOpenAI;
  let bus: ServiceBusClient;
  let env: Record<string, string>;
  const lines: string[] = [];

  beforeAll(async () => {
    webhook = await WebhookReceiver.start();
    test = await startTestAzure({
      dataPlanes: [serviceBusDataPlane, openAiDataPlane],
      config: {
        resources: { serviceBus: { topologyFile: testTopologyFile } },
        alerts: { webhookUrl: webhook.url, evaluationIntervalInSeconds: 0.2, webhookRetryDelaysInSeconds: [0.05, 0.05] },
      },
      log: (line) => lines.push(line),
    });
    env = test.enterHost('recommendation');
    const credential = new ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID! });
    principalId = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!.principalId;
    openAi = new AzureOpenAI({ azureADTokenProvider: getBearerTokenProvider(credential, 'https://cognitiveservices.azure.com/.default'), maxRetries: 0 });
    bus = new ServiceBusClient(env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, credential, shortRetries);
    admin = test.admin();
  });
  afterAll(async () => {
    await bus.close();
    await test.stop();
    await webhook.close();
  });

  const embed = () => openAi.embeddings.create({ model: 'text-embedding-3-small', input: 'trail shoe' });
  const openAiUser = () => ({ principalId, role: findRole('Cognitive Services OpenAI User')!, scope: test.azure.directory.resourceId('openAi') });
  const alerts = (query = '') => admin.call<Alert[]>('GET', `/alerts${query}`);

  describe('when a role of the shared identity is removed and restored', () => {
    let deleted: CommonAlertPayload;
    let denied: CommonAlertPayload;

    beforeAll(async () => {
      expect(test.azure.roleAssignments.delete(openAiUser())).toHaveLength(1);
      deleted = await webhook.waitFor(isRule('role-assignment-deleted', 'Fired'));
      await expect(embed()).rejects.toMatchObject({ status: 401 });
      denied = await webhook.waitFor(isRule('access-denied', 'Fired'));
    });

    it('fires an activity-log alert for the deleted assignment, in the common alert schema', () => {
      expect(deleted.schemaId).toBe('azureMonitorCommonAlertSchema');
      expect(essentials(deleted)).toMatchObject({
        alertRule: 'Role assignment deleted on a resource the system uses',
        severity: 'Sev2',
        signalType: 'Activity Log',
        monitorCondition: 'Fired',
        monitoringService: 'Activity Log - Administrative',
        alertTargetIDs: [test.azure.directory.resourceId('openAi').toLowerCase()],
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      });
      expect(essentials(deleted).alertId).toMatch(new RegExp(`^/subscriptions/${test.azure.directory.subscriptionId}/providers/Microsoft.AlertsManagement/alerts/[0-9a-f-]{36}$`));
      expect(deleted.data.alertContext).toMatchObject({
        operationName: 'Microsoft.Authorization/roleAssignments/delete',
        status: 'Succeeded',
        properties: { principalId, scope: test.azure.directory.resourceId('openAi') },
      });
    });

    it('fires a log alert for the denial, naming the identity, data action and scope', () => {
      expect(essentials(denied)).toMatchObject({ alertRule: 'Access denied to the shared identity', severity: 'Sev1', signalType: 'Log', monitoringService: 'Log Alerts V2' });
      expect(essentials(denied).description).toContain(`id-keyless was denied ${dataActions.openAiEmbeddings} on ${test.azure.directory.resourceId('openAi')}`);
      expect(denied.data.alertContext).toMatchObject({
        conditionType: 'LogQueryCriteria',
        condition: {
          windowSize: 'PT5M',
          allOf: [
            {
              operator: 'GreaterThan',
              threshold: '0',
              metricValue: 1,
              dimensions: expect.arrayContaining([{ name: 'Identity', value: 'id-keyless' }, { name: 'DataAction', value: dataActions.openAiEmbeddings }]),
            },
          ],
        },
      });
    });

    it('prints both on the console and lists them as firing, with what fired them', async () => {
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^\[alert\] FIRED Sev1 Access denied to the shared identity: id-keyless was denied/), expect.stringMatching(/^\[alert\] FIRED Sev2 Role assignment deleted/)]));
      const firing = await alerts('?state=Fired');
      expect(firing.find((a) => a.rule === 'access-denied')).toMatchObject({ evidence: { decision: 'denied', principalId, dataAction: dataActions.openAiEmbeddings } });
    });

    it('counts further denials in the open alert instead of firing again', async () => {
      await expect(embed()).rejects.toMatchObject({ status: 401 });
      await eventually(async () => ((await alerts('?rule=access-denied&state=Fired'))[0]?.count === 2 ? true : undefined), 5000, 'count 2');
      expect(webhook.received.filter((r) => isRule('access-denied', 'Fired')(r.payload))).toHaveLength(1);
    });

    it('resolves both once the role is back and the same call succeeds, and posts the resolutions', async () => {
      test.azure.roleAssignments.create({ ...openAiUser(), source: 'cli' });
      const restored = await webhook.waitFor(isRule('role-assignment-deleted', 'Resolved'));
      expect(essentials(restored).alertId).toBe(essentials(deleted).alertId);
      expect(essentials(restored).resolvedDateTime).toEqual(expect.any(String));
      await embed();
      const cleared = await webhook.waitFor(isRule('access-denied', 'Resolved'));
      expect(essentials(cleared).alertId).toBe(essentials(denied).alertId);
      expect(cleared.data.customProperties).toMatchObject({ resolution: expect.stringContaining('was allowed again') });
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^\[alert\] RESOLVED Access denied to the shared identity/)]));
    });
  });

  describe('when a token request fails, and when the identity endpoint fails', () => {
    const token = (header: string) =>
      fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://servicebus.azure.net&client_id=${env.AZURE_CLIENT_ID}`, { headers: { 'x-identity-header': header } });

    it('fires for the host, with the failure reason, and resolves when the host gets a token again', async () => {
      expect((await token('not-the-header')).status).toBe(401);
      const fired = await webhook.waitFor(isRule('identity-endpoint-failures', 'Fired'));
      expect(essentials(fired).description).toContain('token request of host recommendation');
      expect(essentials(fired).description).toContain('X-IDENTITY-HEADER');
      expect((await token(env.IDENTITY_HEADER!)).status).toBe(200);
      await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Resolved')(p) && essentials(p).alertId === essentials(fired).alertId);
    });

    it('fires while a fault is injected and resolves when it is lifted', async () => {
      await test.azure.setIdentityEndpointFault('error');
      const fired = await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Fired')(p) && essentials(p).description.includes('fault "error"'));
      await test.azure.setIdentityEndpointFault('none');
      await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Resolved')(p) && essentials(p).alertId === essentials(fired).alertId);
    });
  });

  describe('when messages are dead-lettered', () => {
    it('fires a metric alert per entity within the evaluation interval and resolves once its dead-letter queue is empty', async () => {
      test.azure.roleAssignments.create({ principalId, role: findRole('Azure Service Bus Data Owner')!, scope: test.azure.directory.resourceId('serviceBus'), source: 'cli' });
      await bus.createSender('orders').sendMessages({ body: 'poison', messageId: 'poison-1' });
      const receiver = bus.createReceiver('orders');
      const [message] = await receiveExactly(receiver, 1);
      await receiver.deadLetterMessage(message!, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'cannot parse' });
      const fired = await webhook.waitFor(isRule('dead-lettered-messages', 'Fired'));
      expect(essentials(fired)).toMatchObject({ signalType: 'Metric', monitoringService: 'Platform', severity: 'Sev2' });
      expect(fired.data.alertContext).toMatchObject({
        conditionType: 'SingleResourceMultipleMetricCriteria',
        condition: { allOf: [{ metricName: 'DeadletteredMessages', metricNamespace: 'Microsoft.ServiceBus/namespaces', metricValue: 1, dimensions: [{ name: 'EntityName', value: 'orders' }] }] },
      });
      await admin.call('DELETE', '/servicebus/entities/orders/messages?dlq=true');
      await webhook.waitFor((p) => isRule('dead-lettered-messages', 'Resolved')(p) && essentials(p).alertId === essentials(fired).alertId);
    });
  });

  describe('webhook delivery', () => {
    /** Lifts the fault and waits until the resolution of `fired` reached the webhook (so it takes no answer meant for the next test). */
    const liftFault = async (fired: CommonAlertPayload) => {
      await test.azure.setIdentityEndpointFault('none');
      await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Resolved')(p) && essentials(p).alertId === essentials(fired).alertId);
    };
    const deliveries = async (payload: CommonAlertPayload) =>
      (await admin.call<{ notifications: DeliveryStatus[] }>('GET', `/alerts/${essentials(payload).alertId.split('/').pop()}`)).notifications;

    it('retries a 5xx answer and records the delivery', async () => {
      webhook.answers.push(503);
      await test.azure.setIdentityEndpointFault('garbage');
      const fired = await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Fired')(p) && essentials(p).description.includes('fault "garbage"'));
      await eventually(async () => ((await deliveries(fired))[0]?.state === 'delivered' ? true : undefined), 5000, 'delivery');
      expect((await deliveries(fired))[0]).toMatchObject({ monitorCondition: 'Fired', state: 'delivered', attempts: 2, lastResult: 'HTTP 200' });
      expect(webhook.received.filter((r) => essentials(r.payload).alertId === essentials(fired).alertId).map((r) => r.status)).toEqual([503, 200]);
      expect(webhook.received.every((r) => r.contentType === 'application/json')).toBe(true);
      await liftFault(fired);
    });

    it('does not retry an answer that refuses the payload (4xx), and says so on the console', async () => {
      webhook.answers.push(400);
      await test.azure.setIdentityEndpointFault('hang');
      const fired = await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Fired')(p) && essentials(p).description.includes('fault "hang"'));
      await eventually(async () => ((await deliveries(fired))[0]?.state === 'failed' ? true : undefined), 5000, 'failure');
      expect((await deliveries(fired))[0]).toMatchObject({ state: 'failed', attempts: 1, lastResult: 'HTTP 400' });
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/webhook: the Fired notification of "Managed identity endpoint failing" failed after 1 attempt\(s\): HTTP 400/)]));
      await liftFault(fired);
    });

    it('never blocks the local Azure while the webhook does not answer', async () => {
      webhook.answers.push('hang');
      await test.azure.setIdentityEndpointFault('error');
      await webhook.waitFor((p) => isRule('identity-endpoint-failures', 'Fired')(p) && webhook.received.at(-1)?.status === 0);
      const started = performance.now();
      expect((await alerts('?state=Fired')).some((a) => a.rule === 'identity-endpoint-failures')).toBe(true);
      await test.azure.setIdentityEndpointFault('none');
      expect((await alerts('?state=Fired')).some((a) => a.rule === 'identity-endpoint-failures')).toBe(false);
      // The admin API answered while the delivery hung (its attempt times out after 10 s).
      expect(performance.now() - started).toBeLessThan(5000);
    });
  });

  describe('the CLI', () => {
    it('`alert list --output json` prints only JSON: the alerts, newest first', async () => {
      const { code, stdout, stderr } = await runToEnd(process.execPath, [join(repoRoot, 'tools/local-azure/dist/main.js'), 'alert', 'list', '--output', 'json'], {
        env: { ...process.env, LOCAL_AZURE_HOME: test.home },
      });
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      const listed = JSON.parse(stdout) as Alert[];
      expect(listed.map((a) => a.rule)).toEqual(expect.arrayContaining(['access-denied', 'role-assignment-deleted', 'identity-endpoint-failures', 'dead-lettered-messages']));
      expect(listed.map((a) => a.firedAt)).toEqual([...listed.map((a) => a.firedAt)].sort().reverse());
    });

    it('refuses an unknown filter with a clear error', async () => {
      await expect(alerts('?state=Open')).rejects.toThrow('(InvalidFilter) state must be Fired or Resolved');
    });
  });
});

describe('Alerts whose window closes', () => {
  let test: TestAzure;

  beforeAll(async () => {
    test = await startTestAzure({ config: { alerts: { windowInSeconds: 1, evaluationIntervalInSeconds: 0.1 } } });
  });
  afterAll(() => test.stop());

  it('resolves a log alert once no matching event came for the window', async () => {
    const env = test.azure.hostEnv('gateway');
    const response = await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://servicebus.azure.net`, { headers: { 'x-identity-header': 'wrong' } });
    expect(response.status).toBe(401);
    const fired = test.azure.alerts!.engine.list({ rule: 'identity-endpoint-failures' })[0]!;
    expect(fired.monitorCondition).toBe('Fired');
    const resolved = await eventually(() => {
      const alert = test.azure.alerts!.engine.get(fired.id)!;
      return alert.monitorCondition === 'Resolved' ? alert : undefined;
    }, 10_000, 'resolution');
    expect(resolved.resolution).toBe('no matching event in the last 1 s');
  });
});

describe('Alerts when the local Azure stops right after a role assignment changed', () => {
  it('leaves no diff of the assignments pending, to run on the database the stop closes next (it crashed the process)', async () => {
    const test = await startTestAzure();
    try {
      const principalId = test.azure.directory.findUser('reader')!.principalId;
      test.azure.roleAssignments.create({ principalId, role: findRole('Reader')!, scope: test.azure.directory.resourceGroupId, source: 'cli' });
      // The diff is scheduled for the next turn of the event loop; the stop of the alerts comes first, as in LocalAzure.stop.
      test.azure.alerts!.stop();
      const reads = jest.spyOn(test.azure.roleAssignments, 'all');
      for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
      expect(reads).not.toHaveBeenCalled();
      reads.mockRestore();
    } finally {
      await test.stop();
    }
  });
});
