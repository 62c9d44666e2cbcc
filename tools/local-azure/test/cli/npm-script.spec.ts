import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/config/local-azure-config.js';
import { LocalAzureProcess, runToEnd } from '../../src/testing/index.js';

/** `npm run -s local-azure -- <args>` from the repository root, as a user types it in a pipe. */
function npmRun(home: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return runToEnd(npm, ['run', '-s', 'local-azure', '--', ...args], { cwd: repoRoot, env: { ...process.env, LOCAL_AZURE_HOME: home, NX_DAEMON: 'false' } });
}

// The npm script builds the local Azure first (Nx prints its log); that log goes to stderr, so stdout
// carries nothing but what the command prints.
describe('npm run -s local-azure -- … --output json', () => {
  const azure = new LocalAzureProcess();
  beforeAll(() => azure.start(), 30_000);
  afterAll(() => azure.stop(), 30_000);

  it('prints only the JSON on stdout, for a command answered by the running local Azure', async () => {
    const result = await npmRun(azure.home, ['resource', 'list', '--output', 'json']);
    expect(result.code).toBe(0);
    const resources = JSON.parse(result.stdout) as { key: string; id: string }[];
    expect(resources.map((r) => r.key)).toEqual(expect.arrayContaining(['serviceBus', 'openAi', 'vision']));
  }, 120_000);

  it('prints only the JSON on stdout for status, with the state in the exit code', async () => {
    const running = await npmRun(azure.home, ['status', '--output', 'json']);
    expect(running.code).toBe(0);
    expect(JSON.parse(running.stdout)).toMatchObject({ state: 'running', home: azure.home });

    const elsewhere = mkdtempSync(join(tmpdir(), 'local-azure-npm-'));
    const stopped = await npmRun(elsewhere, ['status', '--output', 'json']);
    expect(stopped.code).toBe(3);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ state: 'stopped', home: elsewhere });
  }, 120_000);
});
