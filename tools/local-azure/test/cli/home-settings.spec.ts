import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../src/config/local-azure-config.js';
import { LocalAzureHome } from '../../src/home.js';
import { waitUntilRunning } from '../../src/runtime/status.js';
import { runToEnd } from '../../src/testing/index.js';

const cli = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** The environment without LOCAL_AZURE_* settings, plus `env`. */
function settings(env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('LOCAL_AZURE_'))), ...env };
}

/** Runs the CLI in `cwd` with exactly the given LOCAL_AZURE_* settings. */
function runCli(cwd: string, env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToEnd(process.execPath, [cli, ...args], { cwd, env: settings(env) });
}

describe('the local Azure home setting', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'local-azure-home-setting-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.each(['', '   '])('takes a blank LOCAL_AZURE_HOME (%j) for the default, never the current folder', async (blank) => {
    const result = await runCli(scratch, { LOCAL_AZURE_HOME: blank }, ['status', '--output', 'json']);
    expect(JSON.parse(result.stdout)).toMatchObject({ home: join(repoRoot, '.local-azure') });
    expect(readdirSync(scratch)).toEqual([]);
  }, 30_000);

  it('refuses the root of a git work tree as its home, at start and for any command, naming the folder and what to set', async () => {
    const workTree = join(scratch, 'checkout');
    mkdirSync(join(workTree, '.git'), { recursive: true });
    for (const args of [['start'], ['status']]) {
      const result = await runCli(scratch, { LOCAL_AZURE_HOME: workTree }, args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${workTree} is the root of a git work tree`);
      expect(result.stderr).toMatch(/Set LOCAL_AZURE_HOME to a folder of its own/);
    }
    expect(readdirSync(workTree)).toEqual(['.git']);
  }, 30_000);

  it('starts with its defaults when LOCAL_AZURE_CONFIG and LOCAL_AZURE_SERVICEBUS_CONFIG are blank, in a home that does not exist yet', async () => {
    const home = join(scratch, 'new', 'home');
    const child = spawn(process.execPath, [cli, 'start'], { cwd: scratch, env: settings({ LOCAL_AZURE_HOME: home, LOCAL_AZURE_CONFIG: '', LOCAL_AZURE_SERVICEBUS_CONFIG: '' }), stdio: 'ignore' });
    try {
      const status = await waitUntilRunning(new LocalAzureHome(home), 30_000, { stopWaiting: () => child.exitCode !== null });
      expect(status).toMatchObject({ state: 'running', endpoints: { resources: { serviceBus: expect.stringMatching(/^amqps:/) } } });
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
  }, 60_000);
});
