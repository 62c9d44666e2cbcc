import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeAdjacentPorts, npmAsTyped } from '@keyless/testing';
import { repoRoot } from '../src/system.js';

const launcher = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Runs the built launcher in `cwd` with the given settings (and no inherited LOCAL_AZURE_HOME, LOCAL_AZURE_CONFIG or PORT). */
function runLauncher(cwd: string, env: Record<string, string>, args: string[]): Promise<{ code: number | null; output: string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !['LOCAL_AZURE_HOME', 'LOCAL_AZURE_CONFIG', 'PORT'].includes(key)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [launcher, ...args], { cwd, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** A PORT whose launcher ports (the gateway's, and PORT+1 of the demo images) were free a moment ago. */
const freeLauncherPort = async (): Promise<string> => String(await freeAdjacentPorts(2));

describe('the launcher (npm start, npm run token)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'launcher-settings-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('asks the local Azure whether it runs before handing out a token, and says what to do when it does not', async () => {
    const home = join(scratch, 'never-started');
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: home }, ['token']);
    expect(result.code).toBe(2);
    expect(result.output).toContain(`The system is not running for ${home}: start it with \`LOCAL_AZURE_HOME=${home} npm start\` first.`);
    // Not the local Azure's own advice beside it (`npm run local-azure`), which would start no gateway.
    expect(result.output).not.toContain('npm run local-azure');
  }, 30_000);

  it('names a home of its own in the command it says to run, quoted so that it works as printed in a shell', async () => {
    const home = join(scratch, "it's never started");
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: home }, ['token']);
    const command = /start it with `([^`]+)` first/.exec(result.output)?.[1];
    expect(command).toBeDefined();
    expect(npmAsTyped(command!, ['LOCAL_AZURE_HOME'])).toEqual({ args: ['start'], env: { LOCAL_AZURE_HOME: home } });
  }, 30_000);

  it('refuses an option it does not know with exit 2 and a message, not a stack trace', async () => {
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: join(scratch, 'never-started') }, ['token', '--bogus']);
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/^keyless: Unknown option '--bogus'.* \(--help shows the usage\)\n$/);
  }, 30_000);

  it('takes a blank LOCAL_AZURE_HOME for the default home, never the current folder', async () => {
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: '' }, ['token']);
    // Exit 0 would mean a system runs in the default home (and printed a token); either way not the current folder.
    expect(result.output).not.toContain(scratch);
    if (result.code !== 0) expect(result.output).toContain(`not running for ${join(repoRoot, '.local-azure')}: start it with \`npm start\` first.`);
    expect(readdirSync(scratch)).toEqual([]);
  }, 30_000);

  it('refuses the root of a git work tree as its home, with the local Azure\'s message', async () => {
    const workTree = join(scratch, 'checkout');
    mkdirSync(join(workTree, '.git'), { recursive: true });
    const port = await freeLauncherPort();
    for (const args of [['token'], ['start']]) {
      const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: workTree, PORT: port }, args);
      expect(result.output).toContain(`${workTree} is the root of a git work tree`);
      expect(result.code).not.toBe(0);
    }
    expect(readdirSync(workTree)).toEqual(['.git']);
  }, 30_000);

  it('refuses a LOCAL_AZURE_CONFIG that is not a JSON object, naming the file, before it looks at the ports', async () => {
    const file = join(scratch, 'not-json.json');
    writeFileSync(file, 'ports: 1');
    // The demo image server's port (PORT + 1) is taken too: the configuration is still what the launcher names.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const imagePort = (taken.address() as AddressInfo).port;
      const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: join(scratch, 'config-home'), LOCAL_AZURE_CONFIG: file, PORT: String(imagePort - 1) }, ['start']);
      expect(result.output).toContain(`LOCAL_AZURE_CONFIG names ${file}, which cannot be read as JSON`);
      expect(result.code).toBe(2); // the caller's to fix, like every usage error
    } finally {
      taken.close();
    }
  }, 30_000);

  it('refuses a PORT that is not a port number, and takes a blank one for the default', async () => {
    expect(await runLauncher(scratch, { PORT: 'eighty' }, ['token'])).toMatchObject({ code: 2, output: expect.stringContaining('PORT must be a port number, not "eighty"') });
    expect((await runLauncher(scratch, { PORT: ' ', LOCAL_AZURE_HOME: join(scratch, 'none') }, ['token'])).output).not.toContain('PORT must be');
  }, 30_000);

  it('refuses a KEYLESS_LOG_MAX_MB that is not a whole number of MiB before starting anything', async () => {
    const home = join(scratch, 'log-cap-home');
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: home, PORT: await freeLauncherPort(), KEYLESS_LOG_MAX_MB: '0' }, ['start']);
    expect(result).toMatchObject({ code: 2, output: expect.stringContaining('KEYLESS_LOG_MAX_MB must be a whole number of MiB from 1 to 4096') });
    expect(readdirSync(scratch)).not.toContain('log-cap-home');
  }, 30_000);

  it.each([
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL must be one of trace, debug, info, warn, error'],
    ['KEYLESS_DEMO_CATALOG', 'no', 'KEYLESS_DEMO_CATALOG must be true or false'],
  ])('refuses a %s of "%s" before starting anything, rather than a service exiting at start or the catalog loading', async (name, value, message) => {
    const home = join(scratch, `${name}-home`);
    const result = await runLauncher(scratch, { LOCAL_AZURE_HOME: home, PORT: await freeLauncherPort(), [name]: value }, ['start']);
    expect(result).toMatchObject({ code: 2, output: expect.stringContaining(`${message} (`) });
    expect(result.output).toContain(`not "${value}".`);
    expect(readdirSync(scratch)).not.toContain(`${name}-home`);
  }, 30_000);
});
