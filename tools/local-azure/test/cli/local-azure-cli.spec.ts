import { jest } from '@jest/globals';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '@keyless/contracts';
import { npmAsTyped } from '@keyless/testing';
import { cliOptions } from '../../src/cli/arguments.js';
import { LocalAzureHome } from '../../src/home.js';
import { readStatus } from '../../src/runtime/status.js';

const cli = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** Runs a CLI command against the home; resolves with exit code and output. */
function runCli(home: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, LOCAL_AZURE_HOME: home, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts `local-azure start` in the foreground; waits until `status` says it runs and for its start-up summary. */
async function startForeground(home: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [cli], { env: { ...process.env, LOCAL_AZURE_HOME: home } });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while ((await readStatus(new LocalAzureHome(home))).state !== 'running' || !output.includes('Ctrl-C stops.')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`local Azure did not become ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, output: () => output };
}

/** A GET over HTTPS trusting `ca` (the local Azure's CA). */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    }).on('error', reject);
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

// Every test runs CLI processes, which take seconds on a busy machine.
jest.setTimeout(30_000);

describe('local-azure CLI', () => {
  let home: string;
  let running: { child: ChildProcess; output: () => string };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'local-azure-cli-'));
    running = await startForeground(home);
  });
  afterAll(async () => {
    running.child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  it.each([
    [['role', 'assignment', 'list', '--assignee'], '--assignee needs a value, but nothing follows it: give --assignee <value>'],
    [['status', '--wait'], '--wait needs a value, but nothing follows it: give --wait <value>'],
    [['alert', 'list', '--limit', '--output', 'json'], '--limit needs a value, but --output follows it: give --limit <value>'],
    [['status', '--verbose=yes'], '--verbose takes no value: give --verbose alone'],
    [['status', '--no-such-option'], '--no-such-option is not an option'],
  ])('refuses %j with exit 2 and what to fix, not a stack trace', async (args, message) => {
    const run = await runCli(home, args);
    expect([run.code, run.stdout]).toEqual([2, '']);
    expect(run.stderr.startsWith(`local-azure: ${message}`)).toBe(true);
    expect(run.stderr.endsWith(' (--help lists the commands and their options)\n')).toBe(true);
    expect(run.stderr.split('\n')).toHaveLength(2);
  });

  it('names every option it takes in --help, with its short form', async () => {
    const run = await runCli(home, ['--help']);
    expect(run.code).toBe(0);
    const unnamed = Object.entries(cliOptions)
      .map(([name, option]) => ('short' in option ? `-${option.short}, --${name}` : `--${name}`))
      .filter((form) => !new RegExp(`(^|[\\s(\\[])${form}\\b`, 'm').test(run.stdout));
    expect(unnamed).toEqual([]);
  });

  it('answers a command begun but not finished with its own forms, not the whole usage (exit 2)', async () => {
    const run = await runCli(home, ['fault', 'openai']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('local-azure: "fault openai" is not a whole command. It takes:\n  fault <target> <mode> [ms]');
    expect(run.stderr).not.toContain('role assignment list');
    const alert = await runCli(home, ['alert', 'show']);
    expect(alert.stderr).toContain('alert show <id>');
    // A fault target alone, or a fault with words to spare, is no command at all.
    for (const args of [['vision'], ['fault', 'openai', 'down', '10', 'more']]) expect((await runCli(home, args)).stderr).toContain(`Unknown command "${args.join(' ')}"`);
  });

  it.each([
    // parseArgs takes a dash for an option: "-1" would be "ambiguous", "-5" an unknown option to quote after "--".
    [['status', '--wait', '-1'], '--wait takes a number of seconds (0 or more), not "-1"'],
    [['fault', 'identity-endpoint', 'delay', '-5'], 'The delay must be a whole number of milliseconds (0 or more), not "-5".'],
    [['alert', 'list', '-o', 'json', '--limit', '-2'], '--limit takes a whole number of at least 1, not "-2"'],
  ])('refuses the negative number in %j by what it means (exit 2)', async (args, message) => {
    const run = await runCli(home, args);
    expect([run.code, run.stdout, run.stderr]).toEqual([2, '', `local-azure: ${message}\n`]);
  });

  it('refuses a --limit that is not a whole number of at least 1 (exit 2)', async () => {
    for (const limit of ['abc', '0', '-1']) {
      const run = await runCli(home, ['alert', 'list', `--limit=${limit}`]);
      expect([run.code, run.stderr]).toEqual([2, `local-azure: --limit takes a whole number of at least 1, not "${limit}"\n`]);
    }
  });

  it("takes az's --assignee-principal-type in any case", async () => {
    const args = ['role', 'assignment', 'create', '--assignee', 'id-keyless', '--assignee-principal-type', 'serviceprincipal', '--role', 'Cognitive Services User', '--scope', 'vision', '-o', 'json'];
    const created = await runCli(home, args);
    expect([created.code, created.stderr]).toEqual([0, '']);
    expect(JSON.parse(created.stdout)).toMatchObject({ principalType: 'ServicePrincipal', roleDefinitionName: 'Cognitive Services User' });
  });

  it('says so when there is no alert of the id given to alert show (exit 2)', async () => {
    const missing = await runCli(home, ['alert', 'show', 'no-such-alert']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('No alert with id no-such-alert.');
  });

  it('prints what it serves once ready', () => {
    expect(running.output()).toMatch(/Local Azure ready in \d+ ms/);
    expect(running.output()).toContain('Hosts         gateway, recommendation, vision, storefront');
  });

  it('shows where it serves in the status table, the portal included', async () => {
    const run = await runCli(home, ['status']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Authority {3}https:\/\/\S+$/m);
    expect(run.stdout).toMatch(/^Portal {6}https:\/\/localhost:\d+\/?$/m);
  });

  it('prints nothing for an empty table; a delete that matched nothing says so on stderr', async () => {
    const args = ['role', 'assignment', 'delete', '--assignee', 'id-keyless', '--role', 'Cognitive Services OpenAI User', '--scope', 'vision'];
    const table = await runCli(home, args);
    const json = await runCli(home, [...args, '-o', 'json']);
    expect([table.code, table.stdout]).toEqual([0, '']);
    expect(table.stderr).toBe('No role assignment matched: nothing was deleted (role assignment list shows what there is).\n');
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('lists the role assignments of the access file, as JSON or as a table', async () => {
    const json = await runCli(home, ['role', 'assignment', 'list', '--assignee', 'id-keyless', '--output', 'json']);
    const table = await runCli(home, ['role', 'assignment', 'list', '--role', 'Cognitive Services User']);
    const access = JSON.parse(readFileSync(fileURLToPath(new URL('../../../../infra/access.json', import.meta.url)), 'utf8')) as { assignments: unknown[] };
    expect(JSON.parse(json.stdout)).toHaveLength(access.assignments.length);
    expect(table.stdout.split('\n')[0]).toMatch(/^Principal Id\s+Role Definition Name\s+Scope\s+Source$/);
    expect(table.stdout).toContain('/providers/Microsoft.CognitiveServices/accounts/vision-keyless-local');
  });

  it("accepts az's --all on a list (the command the access doctor prints for someone who may read assignments)", async () => {
    const all = await runCli(home, ['role', 'assignment', 'list', '--assignee', 'id-keyless', '--all', '--output', 'json']);
    const plain = await runCli(home, ['role', 'assignment', 'list', '--assignee', 'id-keyless', '--output', 'json']);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual(JSON.parse(plain.stdout));
  });

  it('deletes an assignment and re-creates it with az\'s own arguments', async () => {
    const identities = JSON.parse((await runCli(home, ['identity', 'list', '-o', 'json'])).stdout) as { name: string; principalId: string }[];
    const shared = identities.find((i) => i.name === 'id-keyless')!;
    const args = ['--role', 'Cognitive Services OpenAI User', '--scope', 'openAi'];

    const deleted = await runCli(home, ['role', 'assignment', 'delete', '--assignee', 'id-keyless', ...args, '-o', 'json']);
    const remaining = JSON.parse((await runCli(home, ['role', 'assignment', 'list', '--assignee', shared.principalId, ...args, '-o', 'json'])).stdout) as unknown[];
    const created = await runCli(home, ['role', 'assignment', 'create', '--assignee-object-id', shared.principalId, '--assignee-principal-type', 'ServicePrincipal', ...args, '-o', 'json']);

    expect(JSON.parse(deleted.stdout)).toHaveLength(1);
    expect(remaining).toHaveLength(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ principalId: shared.principalId, roleDefinitionName: 'Cognitive Services OpenAI User', source: 'cli' });
  });

  it.each([
    [['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Storage Blob Data Reader', '--scope', 'openAi'], /Role 'Storage Blob Data Reader' doesn't exist/],
    [['role', 'assignment', 'create', '--assignee', 'nobody', '--role', 'Cognitive Services User', '--scope', 'vision'], /Cannot find a managed identity .* 'nobody'/],
    [['role', 'assignment', 'create', '--assignee', 'id-keyless', '--role', 'Cognitive Services User'], /required: --scope/],
    [['role', 'assignment', 'list', '--scope', 'nowhere/queues/x'], /neither an ARM id/],
    [['role', 'assignment', 'frobnicate'], /Unknown command "role assignment frobnicate"/],
    [
      ['role', 'assignment', 'create', '--assignee', 'id-keyless', '--assignee-principal-type', 'User', '--role', 'Cognitive Services User', '--scope', 'vision'],
      /\(UnmatchedPrincipalType\) .* has type 'ServicePrincipal', which is different from specified PrincipalType 'User'/,
    ],

  ])('refuses %j with exit code 2 and a message saying what to fix', async (args, message) => {
    const result = await runCli(home, args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('injects a fault, lists it, and heals it with none', async () => {
    const set = await runCli(home, ['fault', 'identity-endpoint', 'delay', '250']);
    const listed = JSON.parse((await runCli(home, ['fault', 'list', '-o', 'json'])).stdout) as { target: string; mode: string; delayInMs?: number }[];
    const healed = await runCli(home, ['fault', 'identity-endpoint', 'none', '-o', 'json']);
    expect(set.stdout).toMatch(/identity-endpoint\s+delay\s+250\s+answers correctly, after 250 milliseconds/);
    expect(listed).toContainEqual(expect.objectContaining({ target: 'identity-endpoint', mode: 'delay', delayInMs: 250 }));
    expect(listed).toContainEqual(expect.objectContaining({ target: 'openai', mode: 'none' }));
    expect(JSON.parse(healed.stdout)).toMatchObject({ target: 'identity-endpoint', mode: 'none' });
  });

  it.each([
    [['fault', 'openai', 'slow'], /\(InvalidFault\) The fault target openai has no mode "slow". Modes: none, 429, 500/],
    [['fault', 'identity-endpoint', 'delay', 'soon'], /whole number of milliseconds \(0 or more\), not "soon"/],
  ])('refuses the fault %j with exit code 2', async (args, message) => {
    const result = await runCli(home, args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('answers log queries with the sign-ins of the identity endpoint', async () => {
    const env = parseEnvFile(readFileSync(join(home, 'env', 'vision.env'), 'utf8'));
    await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://vault.azure.net&client_id=${env.AZURE_CLIENT_ID}`, {
      headers: { 'x-identity-header': env.IDENTITY_HEADER! },
    });
    const log = JSON.parse((await runCli(home, ['log', 'sign-ins', '-o', 'json', '--limit', '1'])).stdout) as unknown[];
    expect(log).toEqual([expect.objectContaining({ host: 'vision', resource: 'https://vault.azure.net', outcome: 'success' })]);
  });

  it('stops cleanly on SIGTERM, keeps its env files, and keeps its tenant across a restart', async () => {
    const tenant = (await runCli(home, ['identity', 'list', '-o', 'json'])).stdout;
    const env = readFileSync(join(home, 'env', 'gateway.env'), 'utf8');
    running.child.kill('SIGTERM');
    expect(await exited(running.child)).toBe(0);
    expect(existsSync(join(home, 'runtime.json'))).toBe(false);
    expect(readFileSync(join(home, 'env', 'gateway.env'), 'utf8')).toBe(env);
    expect((await runCli(home, ['resource', 'list'])).stderr).toMatch(/not running/);

    running = await startForeground(home);
    expect((await runCli(home, ['identity', 'list', '-o', 'json'])).stdout).toBe(tenant);
    expect(readFileSync(join(home, 'env', 'gateway.env'), 'utf8')).toBe(env);
  });
});

/** The `npm` commands in `text` that it tells its reader to run (each in backquotes, or after "sign in: "). */
function npmCommandsIn(text: string): string[] {
  return [...text.matchAll(/`([^`]*\bnpm [^`]*)`|\(sign in: ([^)]*npm [^)]*)\)/g)].map((match) => match[1] ?? match[2]!);
}

/** The arguments npm gets and the home it acts on, for each command the text tells its reader to run. */
function whatTheHintsRun(text: string): { args: string[]; home: string | undefined }[] {
  const commands = npmCommandsIn(text);
  expect(commands).not.toEqual([]);
  return commands.map((command) => {
    const { args, env } = npmAsTyped(command, ['LOCAL_AZURE_HOME']);
    return { args, home: env.LOCAL_AZURE_HOME };
  });
}

describe('local-azure CLI, when LOCAL_AZURE_HOME names a home of its own', () => {
  // Quotes and spaces in the path: the commands printed must still work as printed in a POSIX shell.
  let scratch: string;
  let home: string;
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'local-azure-hints-'));
    home = join(scratch, "it's a home");
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('names that home in every command it tells its user to run next, from the first status to a sign-out', async () => {
    const stopped = await runCli(home, ['status']);
    expect(stopped.code).toBe(3);
    expect(whatTheHintsRun(stopped.stdout)).toEqual([{ args: ['run', 'local-azure'], home }]);
    expect(whatTheHintsRun((await runCli(home, ['resource', 'list'])).stderr)).toEqual([{ args: ['run', 'local-azure'], home }]);

    const running = await startForeground(home);
    try {
      expect(whatTheHintsRun(running.output())).toEqual([{ args: ['run', '-s', 'local-azure', '--', 'portal'], home }]);
      expect(whatTheHintsRun((await runCli(home, ['role', 'assignment', 'list', '--assignee', 'nobody'])).stderr)).toEqual([
        { args: ['run', 'local-azure', '--', 'identity', 'list'], home },
      ]);
      expect(whatTheHintsRun((await runCli(home, ['servicebus', 'peek', 'no-such-queue'])).stderr)).toEqual([
        { args: ['run', 'local-azure', '--', 'servicebus', 'entity', 'list'], home },
      ]);
      // The env files the local Azure writes into the home say how to reach it too.
      expect(whatTheHintsRun(readFileSync(join(home, 'env', 'operator.env'), 'utf8'))).toEqual([
        { args: ['run', 'local-azure', '--', 'login'], home },
        { args: ['run', '-s', 'local-azure', '--', 'portal'], home },
      ]);
      const gatewayEnv = readFileSync(join(home, 'env', 'gateway.env'), 'utf8');
      expect(whatTheHintsRun(gatewayEnv)).toEqual([{ args: ['run', 'local-azure', '--', 'status'], home }]);
      // Its line that loads it names the file as one word of a POSIX shell, quotes and spaces in the path and all.
      const variables = parseEnvFile(gatewayEnv);
      const loaded = /`set -a; \. (.+); set \+a`/.exec(gatewayEnv)![1]!;
      expect(execFileSync('/bin/sh', ['-c', `printf %s ${loaded}`]).toString()).toBe(join(home, 'env', 'gateway.env'));
      // An app sent to the tenant's interactive sign-in learns the commands that sign in on this home instead.
      const authorize = await httpsGet(`${variables.AZURE_AUTHORITY_HOST}/${variables.AZURE_TENANT_ID}/oauth2/v2.0/authorize`, readFileSync(variables.NODE_EXTRA_CA_CERTS!));
      expect(authorize.status).toBe(400);
      expect(whatTheHintsRun((JSON.parse(authorize.body) as { error_description: string }).error_description)).toEqual([
        { args: ['run', 'local-azure', '--', 'login'], home },
        { args: ['run', '-s', 'local-azure', '--', 'portal'], home },
      ]);
      expect((await runCli(home, ['logout'])).code).toBe(0);
      for (const args of [['resource', 'list'], ['account', 'show']]) {
        expect(whatTheHintsRun((await runCli(home, args)).stderr)).toEqual([{ args: ['run', 'local-azure', '--', 'login'], home }]);
      }
    } finally {
      running.child.kill('SIGKILL');
      await exited(running.child);
    }
    // Killed: the status says so, and how to start it again on the same home.
    expect(whatTheHintsRun((await runCli(home, ['status'])).stdout)).toEqual([{ args: ['run', 'local-azure'], home }]);
  }, 90_000); // A dozen CLI processes one after another: over 30 s at load 25.

  it('prints the commands as they are for the default home (LOCAL_AZURE_HOME unset or blank)', async () => {
    const status = await runCli('', ['status']);
    expect(status.stdout).toContain(LocalAzureHome.defaultRoot);
    // No local Azure runs for the default home of a test run's checkout; where one does, it prints no command at all.
    if (status.code === 3) expect(npmCommandsIn(status.stdout)).toEqual(['npm run local-azure']);
    for (const command of npmCommandsIn(status.stdout)) expect(command).not.toContain('LOCAL_AZURE_HOME');
  });
});

describe('local-azure start with an invalid access file', () => {
  it('fails at start with the file, the entry and the field named', async () => {
    const home = mkdtempSync(join(tmpdir(), 'local-azure-bad-'));
    const access = join(home, 'access.json');
    writeFileSync(access, JSON.stringify({ identity: 'id-keyless', assignments: [{ role: 'Cognitive Services User', roleDefinitionId: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd', resource: 'vision', purpose: 'x' }] }));
    writeFileSync(join(home, 'config.json'), JSON.stringify({ accessFile: access }));
    const result = await runCli(home, ['start', '--config', join(home, 'config.json')]);
    rmSync(home, { recursive: true, force: true });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${access}: assignments[0].roleDefinitionId: "Cognitive Services User" has id a97b65f3-24c7-4388-baec-2e87135dc908`);
  });
});
