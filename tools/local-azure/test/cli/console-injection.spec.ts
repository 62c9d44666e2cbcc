import { jest } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalAzureHome } from '../../src/home.js';
import { readStatus } from '../../src/runtime/status.js';

const cli = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

// The CLI process takes seconds to start, and more than 10 on a loaded machine.
jest.setTimeout(60_000);

// Probes of the local Azure's console as a client nobody authenticated writes into it: the console (the log file under
// `npm start`) prints sign-in failures and RBAC denials with the values the client sent.
describe('The local Azure console, given requests whose values carry line breaks and terminal controls', () => {
  const forged = '[portal] operator@keylesslocal.onmicrosoft.com signed in';
  const escape = '\u001b[2J\u001b]0;owned\u0007';
  let home: string;
  let child: ChildProcess;
  let output = '';

  /** Waits until the console has printed `text`. */
  const printed = async (text: string, withinMs = 10_000): Promise<void> => {
    const deadline = Date.now() + withinMs;
    while (!output.includes(text)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the console did not print ${JSON.stringify(text)}:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'local-azure-console-'));
    child = spawn(process.execPath, [cli], { env: { ...process.env, LOCAL_AZURE_HOME: home } });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await printed('Ctrl-C stops.', 50_000);
    expect((await readStatus(new LocalAzureHome(home))).state).toBe('running');
  });
  afterAll(() => {
    child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  /** What the console printed from the line that names `marker` on (that line whole). */
  const linesFrom = (marker: string): string[] => output.slice(output.lastIndexOf('\n', output.indexOf(marker)) + 1).split('\n');

  it('prints an anonymous identity request for a forged resource on one line and its continuation, with the terminal controls escaped', async () => {
    const identity = readFileSync(new LocalAzureHome(home).envFile('gateway'), 'utf8').match(/^IDENTITY_ENDPOINT=(.+)$/m)![1]!;
    const resource = `marker-identity\n${forged}\r\n${escape}`;
    const answer = await fetch(`${identity}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}`, { headers: { 'x-identity-header': 'not-the-host-header' } });
    expect(answer.status).toBe(401);
    await printed('marker-identity');
    const lines = linesFrom('marker-identity');
    expect(lines.some((line) => line.startsWith(forged))).toBe(false);
    expect(lines).toContain(`    ${forged}`);
    expect(output).not.toContain('\u001b');
    expect(output).toContain('\\u001b[2J\\u001b]0;owned\\u0007');
  });

  it("prints the same record in `log sign-ins`' table as one row, with its line breaks and controls escaped", async () => {
    const table = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [cli, 'log', 'sign-ins', '--limit', '20', '--output', 'table'], { env: { ...process.env, LOCAL_AZURE_HOME: home } }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    const row = table.split('\n').find((line) => line.includes('marker-identity'));
    expect(row).toContain(`marker-identity\\u000a${forged}\\u000d\\u000a\\u001b[2J`);
    expect(table.split('\n').some((line) => line.startsWith(forged))).toBe(false);
    expect(table).not.toContain('\u001b');
  });

  it('does the same for an anonymous token request, whose refusal the console prints as a failed sign-in', async () => {
    const env = readFileSync(new LocalAzureHome(home).envFile('operator'), 'utf8');
    const authority = env.match(/^AZURE_AUTHORITY_HOST=(.+)$/m)![1]!;
    const tenant = env.match(/^AZURE_TENANT_ID=(.+)$/m)![1]!;
    const ca = readFileSync(env.match(/^NODE_EXTRA_CA_CERTS=(.+)$/m)![1]!);
    const body = new URLSearchParams({ grant_type: 'password', client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46', resource: `marker-token\n${forged}${escape}`, username: 'u', password: 'p' }).toString();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${authority}/${tenant}/oauth2/token`, { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(400);
    await printed('marker-token');
    const lines = linesFrom('marker-token');
    expect(lines[0]).toMatch(/^\[sign-in\] failure endpoint=token grant=password .*marker-token$/);
    expect(lines[1]).toMatch(/^ {4}\[portal\] operator@keylesslocal\.onmicrosoft\.com signed in\\u001b\[2J/);
    expect(output).not.toContain('\u001b');
  });
});
