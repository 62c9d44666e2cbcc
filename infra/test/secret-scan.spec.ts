import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const secretlint = join(repoRoot, 'node_modules/secretlint/bin/secretlint.js');

interface ScanResult {
  filePath: string;
  messages: { ruleId: string }[];
}

/** Runs the repository's secret scan (its config and ignore file) over a folder, as `npm run secrets` does. */
function scan(folder: string): { status: number | null; findings: Map<string, string[]> } {
  const run = spawnSync(
    process.execPath,
    [secretlint, '--secretlintrc', join(repoRoot, '.secretlintrc.json'), '--secretlintignore', join(repoRoot, '.secretlintignore'), '--format', 'json', '**/*'],
    { cwd: folder, encoding: 'utf8' },
  );
  const results = JSON.parse(run.stdout || '[]') as ScanResult[];
  const findings = new Map(results.filter((r) => r.messages.length).map((r) => [r.filePath.slice(folder.length + 1), r.messages.map((m) => m.ruleId)]));
  return { status: run.status, findings };
}

// Every credential below is generated at run time in a temporary folder: nothing that looks like a key is committed.
describe('the secret scan (npm run secrets)', () => {
  let folder: string;
  const plant = (path: string, content: string): void => {
    mkdirSync(dirname(join(folder, path)), { recursive: true });
    writeFileSync(join(folder, path), content);
  };
  beforeEach(() => (folder = mkdtempSync(join(tmpdir(), 'secret-scan-'))));
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  it('catches a private key and a Service Bus SAS key, and fails', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    plant('apps/gateway/src/tls/server.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    plant('.github/workflows/deploy.env', `SERVICEBUS=Endpoint=sb://sb-x.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${randomBytes(32).toString('base64')}\n`);
    plant('infra/clean.bicep', "param location string = 'westeurope'\n");
    const { status, findings } = scan(folder);
    expect(status).toBe(1);
    expect(Object.fromEntries(findings)).toEqual({
      'apps/gateway/src/tls/server.pem': ['@secretlint/secretlint-rule-privatekey'],
      '.github/workflows/deploy.env': ['@secretlint/secretlint-rule-pattern'],
    });
  });

  it('catches a storage account key in a connection string', () => {
    plant('libs/x/src/config.ts', `export const url = 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=${randomBytes(64).toString('base64')};EndpointSuffix=core.windows.net';\n`);
    expect(Object.fromEntries(scan(folder).findings)).toEqual({ 'libs/x/src/config.ts': ['@secretlint/secretlint-rule-pattern'] });
  });

  it('passes a tree without credentials (identity-based connection settings included)', () => {
    plant('apps/vision/.env.example', 'SERVICEBUS_FULLY_QUALIFIED_NAMESPACE=sb-x.servicebus.windows.net\nAZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000\n');
    expect(scan(folder)).toEqual({ status: 0, findings: new Map() });
  });
});
