import { dataPlanes, findRole } from '@keyless/local-azure';
import { startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { formatReport, readDoctorOptions, runDoctor, type DoctorReport, type ProbeResult } from '../src/index.js';

const summary = (report: DoctorReport): [string, string, string][] => report.results.map((r) => [r.resource, r.check, r.status]);
const failing = (report: DoctorReport): ProbeResult[] => report.results.filter((r) => r.status !== 'ok');

// One local Azure with every data plane; this test file is the `recommendation` host (one identity per process).
describe(runDoctor.name, () => {
  let test: TestAzure;
  let env: Record<string, string>;
  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes });
    env = test.enterHost('recommendation');
  });
  afterAll(() => test.stop());

  describe('when the identity holds exactly the roles of access.json', () => {
    it('passes every probe: a token per audience, a peek per received entity, the diagnostics send, embeddings, chat, image analysis, the database', async () => {
      const report = await runDoctor(readDoctorOptions(env));
      expect(failing(report)).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.identity).toEqual({ clientId: env.AZURE_CLIENT_ID, principalId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(summary(report)).toEqual([
        ['identity', 'token for https://servicebus.azure.net/', 'ok'],
        ['identity', 'token for https://cognitiveservices.azure.com', 'ok'],
        ['identity', 'token for https://vault.azure.net', 'ok'],
        ['identity', 'token for https://ossrdbms-aad.database.windows.net', 'ok'],
        ['serviceBus', 'peek queue replies', 'ok'],
        ['serviceBus', 'peek queue recommendation-requests', 'ok'],
        ['serviceBus', 'peek subscription events/recommendation', 'ok'],
        ['serviceBus', 'peek queue vision-requests', 'ok'],
        ['serviceBus', 'peek subscription events/vision', 'ok'],
        ['serviceBus', 'send to queue diagnostics (expires in 60 s)', 'ok'],
        ['openAi', `embeddings (${env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT})`, 'ok'],
        ['openAi', `chat completion (${env.AZURE_OPENAI_CHAT_DEPLOYMENT})`, 'ok'],
        ['vision', 'image analysis (tags of a 64×64 image)', 'ok'],
        ['postgres', `sign in to ${env.PGHOST}:${env.PGPORT}/${env.PGDATABASE} as ${env.PGUSER}`, 'ok'],
        ['postgres', 'SELECT on keyless_schema_migrations', 'ok'],
        ['postgres', 'SELECT on messaging_handled_messages', 'ok'],
        ['postgres', 'SELECT on catalog_products', 'ok'],
        ['postgres', 'SELECT on catalog_vision', 'ok'],
        ['postgres', 'extension vector (pgvector)', 'ok'],
      ]);
    });
  });

  describe('when the database has no principal for the identity', () => {
    it('fails the sign-in with the exact fix in Azure and locally, and checks nothing after it', async () => {
      const report = await runDoctor(readDoctorOptions({ ...env, PGUSER: 'id-nobody' }));
      const problems = failing(report);
      expect(problems.map((r) => [r.resource, r.status])).toEqual([
        ['postgres', 'missing-principal'],
        ...Array(5).fill(['postgres', 'missing-principal']),
      ]);
      const [signIn, ...rest] = problems;
      expect(signIn!.fix).toContain(`az postgres flexible-server microsoft-entra-admin create --resource-group ${env.POSTGRES_SERVER_RESOURCE_ID!.split('/')[4]}`);
      expect(signIn!.fix).toContain(`pgaadauth_create_principal_with_oid('id-nobody', '${report.identity.principalId}', 'service', true, false)`);
      expect(signIn!.localFix).toMatch(/infra\/access\.json, "databasePrincipals"/);
      expect(signIn!.detail).toBe('28P01: password authentication failed for user "id-nobody"');
      expect(rest.every((r) => r.detail === 'not checked: the sign-in failed')).toBe(true);
      expect(formatReport(report)).toMatch(/postgres\s+sign in to .* as id-nobody\s+database principal\s+missing database principal/);
    });
  });

  describe('when the OpenAI role assignment is deleted', () => {
    const openAiUser = findRole('Cognitive Services OpenAI User')!;
    afterAll(() => test.azure.applyAccessFile());

    it('fails both OpenAI probes, naming the role, the scope and the fix, and passes again once the role is restored', async () => {
      const removed = test.azure.roleAssignments.delete({ role: openAiUser, scope: env.AZURE_OPENAI_RESOURCE_ID! });
      expect(removed).toHaveLength(1);

      const broken = await runDoctor(readDoctorOptions(env));
      expect(broken.ok).toBe(false);
      const problems = failing(broken);
      expect(problems.map((r) => [r.resource, r.status, r.roleNeeded, r.scope])).toEqual([
        ['openAi', 'missing-role', 'Cognitive Services OpenAI User', env.AZURE_OPENAI_RESOURCE_ID],
        ['openAi', 'missing-role', 'Cognitive Services OpenAI User', env.AZURE_OPENAI_RESOURCE_ID],
      ]);
      for (const problem of problems) {
        expect(problem.fix).toBe(
          `az role assignment create --assignee-object-id ${broken.identity.principalId} --assignee-principal-type ServicePrincipal --role "Cognitive Services OpenAI User" --scope ${env.AZURE_OPENAI_RESOURCE_ID}`,
        );
        expect(problem.localFix).toBe(problem.fix!.replace(/^az /, 'npm run local-azure -- '));
        expect(problem.detail).toContain('access.json grants this role: the assignment was removed or not deployed');
      }
      const text = formatReport(broken);
      expect(text).toMatch(/openAi\s+embeddings \(.*\)\s+Cognitive Services OpenAI User\s+missing role/);
      expect(text).toContain(`1. openAi embeddings (${env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT}): missing role ("Cognitive Services OpenAI User" on ${env.AZURE_OPENAI_RESOURCE_ID})`);
      expect(text).toContain('17 ok, 2 failing.');

      test.azure.applyAccessFile();
      const restored = await runDoctor(readDoctorOptions(env));
      expect(failing(restored)).toEqual([]);
    });

    it('calls a denial "propagation pending" when access.json grants the role and it was granted minutes ago', async () => {
      test.azure.roleAssignments.delete({ role: openAiUser, scope: env.AZURE_OPENAI_RESOURCE_ID! });
      const grantedAt = new Date(Date.now() - 2 * 60_000);
      const report = await runDoctor(readDoctorOptions(env, ['--granted-at', grantedAt.toISOString()]));
      expect(failing(report).map((r) => [r.check.split(' ')[0], r.status])).toEqual([
        ['embeddings', 'propagation-pending'],
        ['chat', 'propagation-pending'],
      ]);
      expect(failing(report)[0]!.fix).toContain(`Re-run after ${new Date(grantedAt.getTime() + 10 * 60_000).toISOString()}`);
    });
  });

  describe('when a Service Bus receive role is missing', () => {
    afterAll(() => test.azure.applyAccessFile());

    it('names the entity scope in the fix', async () => {
      const scope = `${env.SERVICEBUS_NAMESPACE_RESOURCE_ID}/topics/events/subscriptions/vision`;
      expect(test.azure.roleAssignments.delete({ role: findRole('Azure Service Bus Data Receiver')!, scope })).toHaveLength(1);
      const report = await runDoctor(readDoctorOptions(env));
      expect(failing(report).map((r) => [r.check, r.status, r.roleNeeded, r.scope])).toEqual([['peek subscription events/vision', 'missing-role', 'Azure Service Bus Data Receiver', scope]]);
      expect(failing(report)[0]!.fix).toContain(`--role "Azure Service Bus Data Receiver" --scope ${scope}`);
    });
  });

  describe('when an endpoint is not configured', () => {
    it('reports the resource as not configured, with the variable to set, and calls nothing there', async () => {
      const { AZURE_VISION_ENDPOINT: _vision, ...rest } = env;
      const report = await runDoctor(readDoctorOptions(rest));
      expect(failing(report)).toEqual([expect.objectContaining({ resource: 'vision', status: 'not-configured', fix: expect.stringContaining('Set AZURE_VISION_ENDPOINT') })]);
    });
  });

  describe('when Azure OpenAI throttles and Azure AI Vision fails (faults openai 429, vision 500)', () => {
    afterAll(() => test.azure.faults.clear());

    it('says the calls were authorized and the resource throttled or failed them, without pointing at the role', async () => {
      await test.azure.faults.set('openai', { mode: '429' });
      await test.azure.faults.set('vision', { mode: '500' });
      const report = await runDoctor(readDoctorOptions(env));
      expect(failing(report).map((r) => [r.resource, r.status, r.fix])).toEqual([
        ['openAi', 'failed', expect.stringMatching(/^Not an access problem: .* throttled the call \(429\)/)],
        ['openAi', 'failed', expect.stringMatching(/^Not an access problem: .* throttled the call \(429\)/)],
        ['vision', 'failed', expect.stringMatching(/^Not an access problem: .* failed the call \(500\)/)],
      ]);
      const text = formatReport(report);
      expect(text).toContain(`1. openAi embeddings (${env.AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT}): failed\n`);
      expect(text).toContain('3. vision image analysis (tags of a 64×64 image): failed\n');
      expect(text).not.toContain('failed ("Cognitive Services');
    });
  });

  describe('when the resource cannot be reached', () => {
    it('reports the endpoint as unreachable, naming the variable', async () => {
      const report = await runDoctor(readDoctorOptions({ ...env, AZURE_VISION_ENDPOINT: 'https://127.0.0.1:9' }));
      expect(failing(report)).toEqual([expect.objectContaining({ resource: 'vision', status: 'endpoint-unreachable', fix: expect.stringContaining('AZURE_VISION_ENDPOINT') })]);
    });
  });
});
