import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

const run = promisify(execFile);
const getToken = fileURLToPath(new URL('../fixtures/get-token.mjs', import.meta.url));

type Outcome = { ok: true; claims: Record<string, unknown> } | { ok: false; name: string; message: string };

/** Runs the real SDK as a process on `host`, with the env file a launcher would export. */
async function tokenFromHost(test: TestAzure, host: string, clientId?: string): Promise<Outcome> {
  const env = test.azure.hostEnv(host);
  const { stdout } = await run(process.execPath, [getToken, 'https://cognitiveservices.azure.com/.default', ...(clientId ? [clientId] : [])], {
    env: { PATH: process.env.PATH, ...env, AZURE_CLIENT_ID: '' },
    timeout: 30_000,
  });
  return JSON.parse(stdout) as Outcome;
}

describe('Managed identity kinds and assignment to hosts', () => {
  let test: TestAzure;

  beforeAll(async () => {
    test = await startTestAzure({
      config: {
        hosts: {
          gateway: { userAssigned: ['id-keyless'] },
          jobs: { systemAssigned: true, userAssigned: ['id-keyless'] },
          bare: {},
        },
        appRoleAssignments: [],
      },
    });
  });
  afterAll(() => test.stop());

  describe('when a host has a system-assigned identity', () => {
    it('issues its token when no client id is given, with the host site as xms_mirid', async () => {
      const outcome = await tokenFromHost(test, 'jobs');
      const system = test.azure.directory.host('jobs')!.systemAssigned!;
      expect(outcome).toMatchObject({ ok: true, claims: { appid: system.clientId, oid: system.principalId } });
      expect(outcome.ok && outcome.claims.xms_mirid).toMatch(/\/providers\/Microsoft\.Web\/sites\/jobs$/);
    });

    it('issues the user-assigned identity token when its client id is given', async () => {
      const shared = test.azure.directory.userAssignedIdentity('id-keyless')!;
      expect(await tokenFromHost(test, 'jobs', shared.clientId)).toMatchObject({ ok: true, claims: { oid: shared.principalId } });
    });
  });

  describe('when a host has only a user-assigned identity', () => {
    it("refuses a request without a client id with App Service's 400", async () => {
      const outcome = await tokenFromHost(test, 'gateway');
      expect(outcome).toMatchObject({ ok: false, name: 'CredentialUnavailableError' });
      expect((outcome as { message: string }).message).toContain('Unable to load the proper Managed Identity.');
    });
  });

  describe('when the client id names an identity the host does not have', () => {
    it('refuses an existing identity that is not assigned to the host', async () => {
      const shared = test.azure.directory.userAssignedIdentity('id-keyless')!;
      const outcome = await tokenFromHost(test, 'bare', shared.clientId);
      expect(outcome).toMatchObject({ ok: false, name: 'CredentialUnavailableError' });
      expect((outcome as { message: string }).message).toContain('Unable to load the proper Managed Identity.');
    });

    it('refuses an unknown client id', async () => {
      const outcome = await tokenFromHost(test, 'gateway', '00000000-0000-4000-8000-000000000001');
      expect(outcome).toMatchObject({ ok: false, name: 'CredentialUnavailableError' });
    });

    it('records each refusal in the sign-in log with the reason', () => {
      const failures = test.azure.auditLog.signIns({ limit: 100 }).filter((s) => s.outcome === 'failure');
      expect(failures.map((f) => f.host).sort()).toEqual(['bare', 'gateway', 'gateway']);
      expect(failures.every((f) => f.reason === 'Unable to load the proper Managed Identity.')).toBe(true);
    });
  });
});
