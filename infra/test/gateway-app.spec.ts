import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProblem, type InfraProblem } from '../src/index.js';
import { PlantedCopy } from './planted-copy.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
type AppRole = { id: string; value: string; description: string; allowedMemberTypes: string[]; isEnabled: boolean };

function gatewayAppProblems(problems: InfraProblem[]): string[] {
  return problems.filter((p) => p.code === 'gateway-app-mismatch').map(formatProblem);
}

describe("the gateway's app registration in Azure", () => {
  let copy: PlantedCopy;
  beforeEach(() => (copy = new PlantedCopy()));
  afterEach(() => copy.remove());

  it('reports a role a gateway route requires that the roles file lacks', () => {
    copy.editJson<AppRole[]>('infra/gateway-app-roles.json', (roles) => roles.splice(roles.findIndex((r) => r.value === 'Images.Analyze'), 1));
    expect(gatewayAppProblems(copy.check())).toEqual([expect.stringMatching(/^infra\/gateway-app-roles\.json: lacks the app role "Images\.Analyze", which gateway routes require/)]);
  });

  it('reports a role no route requires, a reused id and a role users could be given but applications not', () => {
    copy.editJson<AppRole[]>('infra/gateway-app-roles.json', (roles) => {
      roles.push({ ...roles[0]!, id: '00000000-0000-0000-0000-000000000001', value: 'Catalog.Delete' });
      roles[1]!.id = roles[0]!.id;
      roles[2]!.allowedMemberTypes = ['User'];
    });
    expect(gatewayAppProblems(copy.check())).toEqual([
      expect.stringMatching(/\(\[1\]\): gives "Catalog\.Read" the id .*; each role needs its own fixed GUID/),
      expect.stringMatching(/\(\[2\]\): "Recommendations\.Read" is not an enabled role for applications/),
      expect.stringMatching(/\(\[4\]\): declares the app role "Catalog\.Delete", which no gateway route requires/),
    ]);
  });

  it('accepts a retired role that is disabled (the first of the two provisions that remove it), and reports a malformed entry', () => {
    copy.editJson<unknown[]>('infra/gateway-app-roles.json', (roles) => {
      roles.push({ ...(roles[0] as AppRole), id: '00000000-0000-0000-0000-000000000002', value: 'Catalog.Export', isEnabled: false });
      roles.push(null);
    });
    expect(gatewayAppProblems(copy.check())).toEqual([expect.stringMatching(/\(\[5\]\): has null where an app role belongs/)]);
  });

  it('reports a description that differs from the code', () => {
    copy.editJson<AppRole[]>('infra/gateway-app-roles.json', (roles) => (roles[0]!.description = 'anything'));
    expect(gatewayAppProblems(copy.check())).toEqual([expect.stringContaining('describes "Catalog.Write" as "anything"; the code says')]);
  });

  it('reports an azure.yaml without the preprovision hook, and parameters that do not pass the app id', () => {
    copy.replace('azure.yaml', 'run: ./infra/scripts/register-gateway-app.sh', 'run: echo skipped');
    copy.replace('infra/main.parameters.json', '"${GATEWAY_APP_ID}"', '"00000000-0000-0000-0000-000000000000"');
    expect(gatewayAppProblems(copy.check())).toEqual([
      expect.stringMatching(/^infra\/main\.parameters\.json: does not pass \$\{GATEWAY_APP_ID\}/),
      expect.stringMatching(/^azure\.yaml: has no preprovision hook that runs infra\/scripts\/register-gateway-app\.sh/),
    ]);
  });

  it('passes the app id to the gateway as its audience and accepted client id', () => {
    copy.replace('infra/main.bicep', "      GATEWAY_APP_ID: gatewayAppId\n", '');
    expect(copy.check().filter((p) => p.code === 'missing-app-setting').map(formatProblem)).toEqual(
      ['gateway', 'recommendation', 'vision'].map((service) => expect.stringMatching(new RegExp(`app-${service}-.*has no GATEWAY_APP_ID app setting`))),
    );
  });
});

// The Azure CLI cannot run here (no Azure, no Microsoft Graph): these check the scripts parse and refuse
// bad use with a message that says what to do, before they would call az.
describe('the gateway app scripts', () => {
  const run = (script: string, args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } => {
    const result = spawnSync('sh', [join(repoRoot, 'infra/scripts', script), ...args], { env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8' });
    return { status: result.status, stderr: result.stderr };
  };

  it.each(['register-gateway-app.sh', 'grant-gateway-role.sh'])('%s is valid POSIX shell', (script) => {
    expect(spawnSync('sh', ['-n', join(repoRoot, 'infra/scripts', script)], { encoding: 'utf8' })).toMatchObject({ status: 0, stderr: '' });
  });

  it('register-gateway-app.sh says it runs through azd when AZURE_ENV_NAME is missing', () => {
    const { status, stderr } = run('register-gateway-app.sh', []);
    expect(status).not.toBe(0);
    expect(stderr).toContain('run this through azd (azd provision or azd up)');
  });

  it('register-gateway-app.sh names the missing Azure CLI', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-az-'));
    try {
      const { status, stderr } = run('register-gateway-app.sh', [], { AZURE_ENV_NAME: 'dev', PATH: `${empty}:/usr/bin:/bin` });
      expect(status).toBe(1);
      expect(stderr).toBe("register-gateway-app: az is not installed; it is needed to register the gateway's app.\n");
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('grant-gateway-role.sh prints its usage without a principal and a role', () => {
    const { status, stderr } = run('grant-gateway-role.sh', ['only-one-argument']);
    expect(status).toBe(2);
    expect(stderr).toMatch(/^usage: .*grant-gateway-role\.sh <caller principal \(object\) id> <role> \[<role>\.\.\.\]/);
  });

  it('grant-gateway-role.sh refuses a name where the principal id belongs', () => {
    const { status, stderr } = run('grant-gateway-role.sh', ['id-storefront', 'Catalog.Read']);
    expect(status).toBe(2);
    expect(stderr).toContain("'id-storefront' is not an object id (a GUID)");
  });
});
