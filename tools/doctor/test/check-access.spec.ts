import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dataActions, entityScope, findRole, grants } from '@keyless/contracts';
import { dataPlanes } from '@keyless/local-azure';
import { freePorts, runToEnd, startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { formatReport, readDoctorOptions, resourceIdVariables, runDoctor, type AccessFileEntry, type CheckAccessReport, type DoctorReport } from '../src/index.js';

const localAzureCli = fileURLToPath(new URL('../../local-azure/dist/main.js', import.meta.url));
const access = JSON.parse(readFileSync(fileURLToPath(new URL('../../../infra/access.json', import.meta.url)), 'utf8')) as { assignments: AccessFileEntry[] };

/** The rows of the view other than "not granted" (what neither the identity holds nor access.json grants). */
const rows = (view: CheckAccessReport) =>
  view.scopes.flatMap((scope) => scope.dataActions.filter((row) => row.status !== 'not-granted').map((row) => ({ scope: scope.scope, ...row })));

/**
 * Splits a printed command line into arguments (double quotes group words), and runs the local Azure's CLI with
 * the arguments after `npm run local-azure --`, exactly as printed.
 */
function runPrinted(test: TestAzure, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const prefix = 'npm run local-azure -- ';
  expect(command.startsWith(prefix)).toBe(true);
  const args = [...command.slice(prefix.length).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  return runToEnd(process.execPath, [localAzureCli, ...args, '--output', 'json'], { env: { PATH: process.env.PATH ?? '', LOCAL_AZURE_HOME: test.home } });
}

// One local Azure with every data plane; this file is the `recommendation` host, which runs as id-keyless.
describe('npm run doctor -- --check-access', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let principalId: string;
  let resourceGroup: string;
  /** The scope of an access.json entry, from the resource ids of the host's environment. */
  const scopeOf = (entry: AccessFileEntry): string => entityScope(env[resourceIdVariables[entry.resource]]!, entry);
  const check = async (extraEnv: Record<string, string> = {}): Promise<DoctorReport & { checkAccess: CheckAccessReport }> => {
    const report = await runDoctor(readDoctorOptions({ ...env, ...extraEnv }, ['--check-access']));
    expect(report.checkAccess).toBeDefined();
    return report as DoctorReport & { checkAccess: CheckAccessReport };
  };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes });
    env = test.enterHost('recommendation');
    principalId = test.azure.directory.userAssignedIdentity('id-keyless')!.principalId;
    resourceGroup = test.azure.directory.resourceGroupId;
  });
  afterAll(() => test.stop());

  describe('when the identity may not read its role assignments (only its data-plane roles)', () => {
    it('says what it could not read, why, and which role or command would show it, and still reports every probe', async () => {
      const report = await check();
      const view = report.checkAccess;

      expect(report.results.filter((r) => r.status !== 'ok')).toEqual([]);
      expect(report.results.map((r) => r.check)).toContain('token for https://management.azure.com');
      expect(report.ok).toBe(true);
      expect(view.principalId).toBe(principalId);
      expect(view.endpoint).toBe(env.AZURE_RESOURCE_MANAGER_ENDPOINT);
      expect(view.read).toBe('partial');
      expect(view.unread.map((u) => [u.resource, u.scope, u.failure.kind, u.failure.status, u.failure.code])).toEqual(
        (['serviceBus', 'vision', 'keyVault', 'appInsights'] as const).map((resource) => [resource, env[resourceIdVariables[resource]], 'forbidden', 403, 'AuthorizationFailed']),
      );
      for (const u of view.unread) expect(u.failure.message).toContain(`does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/read' over scope '${u.scope}'`);
      expect(view.readHelp).toEqual({
        why: expect.stringContaining('Microsoft.Authorization/roleAssignments/read'),
        grantReader: {
          az: `az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Reader" --scope ${resourceGroup}`,
          localAzure: `npm run local-azure -- role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Reader" --scope ${resourceGroup}`,
        },
        listAssignments: {
          az: `az role assignment list --assignee ${principalId} --all --output table`,
          localAzure: `npm run local-azure -- role assignment list --assignee ${principalId} --all`,
        },
      });
      // Nothing unread is called missing; what access.json grants there is listed with the probe that exercised it.
      expect(view.counts.missing).toBe(0);
      const replies = view.scopes.find((s) => s.scope === `${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/queues/replies`)!;
      expect(replies.read).toBe(false);
      expect(replies.dataActions.find((r) => r.dataAction === dataActions.serviceBusReceive)).toEqual({
        dataAction: dataActions.serviceBusReceive,
        status: 'not-read',
        grantedBy: [],
        expectedBy: [{ role: 'Azure Service Bus Data Receiver', scope: replies.scope, purpose: expect.any(String) }],
        probes: [{ check: 'peek queue replies', status: 'ok' }],
      });
    });

    it("shows the OpenAI account in full: Cognitive Services OpenAI User includes reading role assignments, in Azure as here", async () => {
      const view = (await check()).checkAccess;
      const openAi = view.scopes.find((s) => s.resource === 'openAi')!;
      expect(openAi.read).toBe(true);
      expect(rows({ ...view, scopes: [openAi] }).map((r) => [r.dataAction, r.status, r.grantedBy.map((g) => [g.role, g.scope])])).toEqual([
        [dataActions.openAiChatCompletions, 'ok', [['Cognitive Services OpenAI User', env.AZURE_OPENAI_RESOURCE_ID]]],
        [dataActions.openAiEmbeddings, 'ok', [['Cognitive Services OpenAI User', env.AZURE_OPENAI_RESOURCE_ID]]],
      ]);
    });

    it('prints the probe table, then the refusal in plain words with both ways to read the assignments', async () => {
      const text = formatReport(await check());
      expect(text).toMatch(/serviceBus\s+peek queue replies\s+Azure Service Bus Data Receiver\s+ok/);
      expect(text).toContain('20 ok, 0 failing.');
      expect(text).toContain('Could not read the role assignments on 4 of 5 resources:');
      expect(text).toContain(`403 AuthorizationFailed: The client '${env.AZURE_CLIENT_ID}' with object id '${principalId}' does not have authorization`);
      expect(text).toContain('Why: Reading role assignments is a control-plane action (Microsoft.Authorization/roleAssignments/read).');
      expect(text).toContain(`  az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Reader" --scope ${resourceGroup}`);
      expect(text).toContain(`  az role assignment list --assignee ${principalId} --all --output table`);
      expect(text).toMatch(/not read\s+Microsoft\.ServiceBus\/namespaces\/messages\/receive\/action\s+access\.json: Azure Service Bus Data Receiver at this scope; probe peek queue replies: ok/);
      expect(text).not.toMatch(/\n\s+at \S+ \(/); // no stack trace
    });

    it("prints a list command that works for someone who may read assignments (here: the operator's CLI)", async () => {
      const { readHelp } = (await check()).checkAccess;
      const listed = await runPrinted(test, readHelp!.listAssignments.localAzure);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toHaveLength(access.assignments.length);
    });
  });

  describe('when Azure Resource Manager cannot be asked', () => {
    const unread = (view: CheckAccessReport) => view.unread.map((u) => [u.resource, u.failure.kind, u.failure.code, u.fix]);
    const resources = ['serviceBus', 'openAi', 'vision', 'keyVault', 'appInsights'];

    it('names the variable when ARM does not answer, and still reports the probes', async () => {
      const [closed] = await freePorts(1); // free a moment ago: nothing listens there
      const endpoint = `https://127.0.0.1:${closed}`;
      const report = await check({ AZURE_RESOURCE_MANAGER_ENDPOINT: endpoint });
      const fix = `Check that AZURE_RESOURCE_MANAGER_ENDPOINT (${endpoint}) is right and reachable from here (network, firewall, proxy).`;
      expect(unread(report.checkAccess)).toEqual(resources.map((r) => [r, 'unreachable', 'EndpointUnreachable', fix]));
      expect(report.checkAccess.read).toBe('none');
      expect(report.checkAccess.readHelp).toBeUndefined();
      expect(report.results.filter((r) => r.status !== 'ok')).toEqual([]);
      expect(report.ok).toBe(true);
      expect(formatReport(report)).toContain(`Could not read the role assignments on 5 of 5 resources:\n  serviceBus  ${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}\n    EndpointUnreachable: ${endpoint} cannot be reached (`);
      expect(formatReport(report)).toContain(`)\n    ${fix}\n`);
    });

    it('asks for the variable against the local Azure rather than guessing an address', async () => {
      const { AZURE_RESOURCE_MANAGER_ENDPOINT: _arm, ...rest } = env;
      const report = await runDoctor(readDoctorOptions(rest, ['--check-access']));
      expect(unread(report.checkAccess!)).toEqual(resources.map((r) => [r, 'failed', 'EndpointNotConfigured', "Set AZURE_RESOURCE_MANAGER_ENDPOINT (the local Azure's env files carry it)."]));
    });

    it('refuses to send the token over plain HTTP', async () => {
      const report = await check({ AZURE_RESOURCE_MANAGER_ENDPOINT: env.AZURE_RESOURCE_MANAGER_ENDPOINT!.replace('https:', 'http:') });
      expect(unread(report.checkAccess).map(([, kind, code]) => [kind, code])).toEqual(resources.map(() => ['failed', 'EndpointNotHttps']));
    });

    it("lists a resource of access.json whose ARM id is not configured as such, with the variable to set", async () => {
      const { AZURE_KEY_VAULT_RESOURCE_ID: _vault, ...rest } = env;
      const view = (await runDoctor(readDoctorOptions(rest, ['--check-access']))).checkAccess!;
      expect(view.notConfigured).toEqual([{ resource: 'keyVault', variable: 'AZURE_KEY_VAULT_RESOURCE_ID', roles: ['Key Vault Secrets User'] }]);
      expect(view.scopes.map((s) => s.resource)).not.toContain('keyVault');
      expect(view.unread.map((u) => u.resource)).not.toContain('keyVault');
    });
  });

  describe('when the identity holds Reader on the resource group (granted through the operator)', () => {
    let readerAssignment: string;
    beforeAll(async () => {
      readerAssignment = `${resourceGroup}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`;
      await test.admin().call('PUT', `${readerAssignment}?api-version=2022-04-01`, {
        properties: {
          roleDefinitionId: `/subscriptions/${test.azure.directory.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${findRole('Reader')!.id}`,
          principalId,
          principalType: 'ServicePrincipal',
        },
      });
    });
    afterAll(async () => {
      await test.admin().call('DELETE', `${readerAssignment}?api-version=2022-04-01`);
      test.azure.applyAccessFile();
    });

    it("reads every scope and matches access.json's assignments data action by data action", async () => {
      const report = await check();
      const view = report.checkAccess;
      expect({ read: view.read, unread: view.unread, readHelp: view.readHelp, notes: view.notes, notConfigured: view.notConfigured }).toEqual({
        read: 'complete',
        unread: [],
        readHelp: undefined,
        notes: [],
        notConfigured: [],
      });
      expect(report.ok).toBe(true);

      // What access.json grants, worked out here from the file and the built-in roles: [scope, data action, role].
      const granted = access.assignments.flatMap((entry) =>
        Object.values(dataActions)
          .filter((action) => grants(findRole(entry.role)!, action))
          .map((action) => [scopeOf(entry), action, entry.role]),
      );
      expect(granted.length).toBeGreaterThanOrEqual(access.assignments.length);
      const viewRows = rows(view);
      for (const [scope, action, role] of granted) {
        const row = viewRows.find((r) => r.scope === scope && r.dataAction === action);
        expect({ scope, action, status: row?.status, grantedBy: row?.grantedBy.map((g) => [g.role, g.scope]) }).toEqual({
          scope,
          action,
          status: 'ok',
          grantedBy: expect.arrayContaining([[role, scope]]),
        });
      }
      // And nothing else: every row held is one access.json grants (directly or inherited from a topic).
      expect(viewRows.filter((r) => r.status !== 'ok')).toEqual([]);
      expect(view.counts).toEqual({ ok: viewRows.length, missing: 0, notInAccessJson: 0, notRead: 0 });

      // Every assignment read: access.json's, plus the Reader made by hand.
      expect(view.assignments.filter((a) => a.inAccessJson)).toHaveLength(access.assignments.length);
      expect(view.assignments.filter((a) => !a.inAccessJson)).toEqual([{ id: readerAssignment, role: 'Reader', scope: resourceGroup, principalId, inAccessJson: false }]);

      const text = formatReport(report);
      expect(text).not.toContain('Could not read');
      expect(text).toMatch(/ok\s+Microsoft\.ServiceBus\/namespaces\/messages\/send\/action\s+Azure Service Bus Data Sender at namespaces\/sb-keyless-local\/topics\/events \(inherited\)/);
      expect(text).toContain(`Other role assignments of the identity (not in access.json):\n  Reader at resource group ${resourceGroup.split('/').pop()}`);
      expect(text).toContain(`Check access: ${view.counts.ok} ok, 0 missing, 0 not read, 0 not in access.json.`);
    });

    it('names the variable of a resource id that names nothing (404 from ARM)', async () => {
      const missing = `${resourceGroup}/providers/Microsoft.CognitiveServices/accounts/no-such-account`;
      const view = (await check({ AZURE_VISION_RESOURCE_ID: missing })).checkAccess;
      expect(view.unread).toEqual([
        {
          resource: 'vision',
          scope: missing,
          failure: { kind: 'not-found', status: 404, code: 'ResourceNotFound', message: expect.stringContaining('no-such-account') },
          fix: 'Azure Resource Manager knows no such resource: check AZURE_VISION_RESOURCE_ID.',
        },
      ]);
      expect(view.read).toBe('partial');
    });

    describe('and a role of access.json is revoked', () => {
      it('shows the data actions it granted as missing, with the command that grants it back — which works', async () => {
        const scope = `${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/topics/events/subscriptions/recommendation`;
        const before = (await check()).checkAccess;
        const receive = before.scopes.find((s) => s.scope === scope)!.dataActions.find((r) => r.dataAction === dataActions.serviceBusReceive)!;
        expect(receive.grantedBy).toHaveLength(1);
        await test.admin().call('DELETE', `${receive.grantedBy[0]!.assignmentId}?api-version=2022-04-01`);

        const broken = await check();
        expect(broken.ok).toBe(false);
        const command = `role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Azure Service Bus Data Receiver" --scope ${scope}`;
        expect(rows(broken.checkAccess).filter((r) => r.status !== 'ok')).toEqual([
          {
            scope,
            dataAction: dataActions.serviceBusReceive,
            status: 'missing',
            granted: false,
            grantedBy: [],
            expectedBy: [{ role: 'Azure Service Bus Data Receiver', scope, purpose: 'recommendation consumes product and vision events' }],
            probes: [{ check: 'peek subscription events/recommendation', status: 'missing-role' }],
            fix: `az ${command}`,
            localFix: `npm run local-azure -- ${command}`,
          },
        ]);
        expect(broken.checkAccess.counts.missing).toBe(1);
        const text = formatReport(broken);
        expect(text).toMatch(/missing\s+Microsoft\.ServiceBus\/namespaces\/messages\/receive\/action\s+access\.json: Azure Service Bus Data Receiver at this scope; probe peek subscription events\/recommendation: missing role/);
        expect(text).toContain(`Check access: ${broken.checkAccess.counts.ok} ok, 1 missing, 0 not read, 0 not in access.json.\nTo fix (grant what access.json grants):\n1. az ${command}\n   local Azure: npm run local-azure -- ${command}`);

        const fixed = await runPrinted(test, `npm run local-azure -- ${command}`);
        expect(fixed.code).toBe(0);
        const after = await check();
        expect(after.ok).toBe(true);
        expect(rows(after.checkAccess).filter((r) => r.status !== 'ok')).toEqual([]);
      });

      it('shows a role held beyond access.json as not in access.json, without failing', async () => {
        const owner = `${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`;
        await test.admin().call('PUT', `${owner}?api-version=2022-04-01`, {
          properties: {
            roleDefinitionId: `/subscriptions/${test.azure.directory.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${findRole('Azure Service Bus Data Owner')!.id}`,
            principalId,
          },
        });
        try {
          const report = await check();
          // Data Owner on the namespace reaches every entity: receive where access.json grants only send is beyond it,
          // and so is managing each entity, which access.json grants nowhere.
          const beyond = rows(report.checkAccess)
            .filter((r) => r.status === 'not-in-access-json')
            .map((r) => ({ entity: r.scope.split('/').slice(-2).join('/'), dataAction: r.dataAction, roles: r.grantedBy.map((g) => g.role) }));
          expect(beyond.every((row) => row.roles.length === 1 && row.roles[0] === 'Azure Service Bus Data Owner')).toBe(true);
          expect(beyond.filter((row) => row.dataAction === dataActions.serviceBusReceive).map((row) => row.entity)).toEqual(['topics/events', 'queues/diagnostics']);
          expect(beyond.filter((row) => row.dataAction === dataActions.serviceBusManage).map((row) => row.entity)).toEqual([
            'queues/recommendation-requests',
            'queues/vision-requests',
            'queues/replies',
            'topics/events',
            'subscriptions/vision',
            'subscriptions/recommendation',
            'queues/diagnostics',
          ]);
          expect(beyond.every((row) => row.dataAction === dataActions.serviceBusReceive || row.dataAction === dataActions.serviceBusManage)).toBe(true);
          expect(report.checkAccess.assignments.find((a) => a.id === owner)).toMatchObject({ role: 'Azure Service Bus Data Owner', inAccessJson: false });
          expect(report.ok).toBe(true);
          expect(formatReport(report)).toMatch(/not in access\.json\s+Microsoft\.ServiceBus\/namespaces\/messages\/receive\/action\s+Azure Service Bus Data Owner at namespaces\/sb-keyless-local \(inherited\); access\.json does not grant it here/);
        } finally {
          await test.admin().call('DELETE', `${owner}?api-version=2022-04-01`);
        }
      });
    });
  });
});

