import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { findRole } from '@keyless/contracts';
import { dataPlanes } from '@keyless/local-azure';
import { runToEnd, startTestAzure, type TestAzure } from '@keyless/local-azure/testing';
import { npmAsTyped } from '@keyless/testing';
import type { DoctorReport } from '../src/index.js';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Runs the built CLI as an operator would, with exactly `env` (plus PATH) as its environment. */
function doctor(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToEnd(process.execPath, [main, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
}

describe('npm run doctor (the CLI)', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes });
    env = test.azure.hostEnv('vision');
  });
  afterAll(() => test.stop());

  it('prints a JSON report and exits 0 when every probe passes', async () => {
    const run = await doctor(env, ['--json']);
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(report.results.filter((r) => r.status !== 'ok')).toEqual([]);
    expect(run.code).toBe(0);
  });

  it('waits for the first token only when the identity endpoint does not answer, and reports the others as not requested', async () => {
    // A fresh process holds no token: each audience would wait the probe's whole 15 s.
    await test.azure.faults.set('identity-endpoint', { mode: 'hang' });
    try {
      const run = await doctor(env, ['--json']);
      expect(run.code).toBe(1);
      const tokens = (JSON.parse(run.stdout) as DoctorReport).results.filter((r) => r.resource === 'identity');
      expect(tokens.map((r) => r.status)).toEqual(Array(4).fill('endpoint-unreachable'));
      expect(tokens[0]!.detail).toContain('gave no token within');
      expect(tokens.slice(1).map((r) => r.detail)).toEqual(Array(3).fill('not requested: the identity endpoint did not answer the request for a token for https://servicebus.azure.net/'));
      expect(tokens.slice(1).every((r) => r.fix === tokens[0]!.fix && r.durationInMs === 0)).toBe(true);
    } finally {
      await test.azure.faults.clear();
    }
  }, 60_000);

  it('exits 1 with the table and the fix when a role is missing', async () => {
    const scope = env.AZURE_VISION_RESOURCE_ID!;
    const [removed] = test.azure.roleAssignments.delete({ scope });
    expect(removed?.roleDefinitionName).toBe('Cognitive Services User');
    try {
      const run = await doctor(env);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/vision\s+image analysis \(tags of a 64×64 image\)\s+Cognitive Services User\s+missing role/);
      expect(run.stdout).toContain(`--role "Cognitive Services User" --scope ${scope}`);
      expect(run.stdout).toContain('local Azure: npm run local-azure -- role assignment create');
      // For a home of its own, the local Azure's fix names it, quoted for the shell, and works as printed.
      const home = "/tmp/keyless doctor's home";
      const custom = await doctor({ ...env, LOCAL_AZURE_HOME: home });
      const localFix = /^ {3}local Azure: (.+)$/m.exec(custom.stdout)![1]!;
      expect(npmAsTyped(localFix, ['LOCAL_AZURE_HOME'])).toEqual({
        args: ['run', 'local-azure', '--', 'role', 'assignment', 'create', '--assignee-object-id', test.azure.directory.userAssignedIdentity('id-keyless')!.principalId,
          '--assignee-principal-type', 'ServicePrincipal', '--role', 'Cognitive Services User', '--scope', scope],
        env: { LOCAL_AZURE_HOME: home },
      });
    } finally {
      test.azure.applyAccessFile();
    }
  });

  it('refuses to run without an identity, naming AZURE_CLIENT_ID and how to load a host environment (exit 2)', async () => {
    const { AZURE_CLIENT_ID: _id, ...rest } = env;
    const run = await doctor(rest);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('access doctor: AZURE_CLIENT_ID is not set, so there is no identity to check.');
    expect(run.stderr).toContain('set -a; . "${LOCAL_AZURE_HOME:-.local-azure}/env/recommendation.env"; set +a');
  });

  it('reports the same refusal as JSON with its code when --json is given', async () => {
    const { AZURE_CLIENT_ID: _id, ...rest } = env;
    const run = await doctor(rest, ['--json']);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({ error: { code: 'IdentityNotConfigured', message: expect.stringContaining('AZURE_CLIENT_ID is not set') } });
  });

  it('prints its usage, options and exit codes for --help, even without a host environment (exit 0)', async () => {
    const run = await doctor({}, ['--help']);
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toMatch(/^Usage: npm run doctor -- \[--json\]/);
    expect(run.stdout).toContain('--check-access');
    expect(run.stdout).toContain('Exit codes: 0 all is well, 1 a probe failed');
  });

  it('refuses an unknown argument with the usage (exit 2)', async () => {
    const run = await doctor(env, ['--verbose']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Unknown argument "--verbose". Usage: npm run doctor -- [--json] [--granted-at <ISO time>]');
  });

  it('refuses an --output it does not know, as JSON when JSON was asked for (exit 2)', async () => {
    const yaml = await doctor(env, ['--output', 'yaml']);
    expect(yaml.code).toBe(2);
    expect(yaml.stderr).toContain('access doctor: --output takes json or table, got "yaml". Usage: npm run doctor --');
    const json = await doctor(env, ['--output', 'json', '--verbose']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'ArgumentInvalid', message: expect.stringContaining('Unknown argument "--verbose"') } });
  });

  describe('with --check-access', () => {
    it('prints only JSON on stdout with --output json: the probes, and what it could not read and why', async () => {
      const run = await doctor(env, ['--check-access', '--output', 'json']);
      expect(run.stderr).toBe('');
      const report = JSON.parse(run.stdout) as DoctorReport;
      expect(run.code).toBe(0);
      expect(report.results.filter((r) => r.status !== 'ok')).toEqual([]);
      expect(report.checkAccess).toMatchObject({ read: 'partial', readHelp: { grantReader: { az: expect.stringContaining('--role "Reader"') } } });
      expect(report.checkAccess!.unread.map((u) => u.failure.code)).toEqual(['AuthorizationFailed', 'AuthorizationFailed', 'AuthorizationFailed', 'AuthorizationFailed']);
    });

    it('exits 1 for a role access.json grants that no probe exercises (Key Vault), naming the fix', async () => {
      const principalId = test.azure.directory.userAssignedIdentity('id-keyless')!.principalId;
      const reader = `${test.azure.directory.resourceGroupId}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`;
      await test.admin().call('PUT', `${reader}?api-version=2022-04-01`, {
        properties: { roleDefinitionId: `/subscriptions/${test.azure.directory.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${findRole('Reader')!.id}`, principalId },
      });
      const vault = env.AZURE_KEY_VAULT_RESOURCE_ID!;
      expect(test.azure.roleAssignments.delete({ role: findRole('Key Vault Secrets User')!, scope: vault })).toHaveLength(1);
      try {
        const run = await doctor(env, ['--check-access']);
        expect(run.stderr).toBe('');
        expect(run.code).toBe(1);
        expect(run.stdout).toContain('20 ok, 0 failing.');
        expect(run.stdout).toMatch(/missing\s+Microsoft\.KeyVault\/vaults\/secrets\/getSecret\/action\s+access\.json: Key Vault Secrets User at this scope/);
        expect(run.stdout).toContain(
          `1. az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Key Vault Secrets User" --scope ${vault}\n` +
            `   local Azure: npm run local-azure -- role assignment create --assignee-object-id ${principalId}`,
        );
      } finally {
        test.azure.applyAccessFile();
        await test.admin().call('DELETE', `${reader}?api-version=2022-04-01`);
      }
    });

    it('says why it read nothing when the identity gets no token for ARM, without a stack trace', async () => {
      const storefront = test.azure.hostEnv('storefront');
      const run = await doctor({ ...env, IDENTITY_ENDPOINT: storefront.IDENTITY_ENDPOINT!, IDENTITY_HEADER: storefront.IDENTITY_HEADER! }, ['--check-access', '--output', 'json']);
      const report = JSON.parse(run.stdout) as DoctorReport;
      expect(run.code).toBe(1);
      expect(report.checkAccess!.read).toBe('none');
      for (const unread of report.checkAccess!.unread) {
        expect(unread.failure).toMatchObject({ code: 'NoToken', message: expect.stringContaining('the identity got no token for Azure Resource Manager') });
        expect(unread.fix).toContain(`Assign the user-assigned identity with client id ${env.AZURE_CLIENT_ID}`);
      }
      expect(run.stdout).not.toMatch(/\n\s+at \S+ \(/);
    });
  });

  it('reports an identity not assigned to the host', async () => {
    const storefront = test.azure.hostEnv('storefront');
    // The shared identity's client id on the storefront host, which only has id-storefront.
    const run = await doctor({ ...env, IDENTITY_ENDPOINT: storefront.IDENTITY_ENDPOINT!, IDENTITY_HEADER: storefront.IDENTITY_HEADER! }, ['--json']);
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(run.code).toBe(1);
    expect(new Set(report.results.map((r) => r.status))).toEqual(new Set(['identity-not-assigned']));
    expect(report.results[0]!.fix).toContain(`Assign the user-assigned identity with client id ${env.AZURE_CLIENT_ID}`);
  });
});
