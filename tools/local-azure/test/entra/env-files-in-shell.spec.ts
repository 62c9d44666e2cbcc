import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile } from '@keyless/contracts';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

/** The variables a POSIX shell exports from `file` with `set -a; . file; set +a`, as the process it starts sees them. */
function sourcedInShell(file: string): Record<string, string> {
  const printEnv = `${JSON.stringify(process.execPath)} -e 'process.stdout.write(JSON.stringify(process.env))'`;
  const output = execFileSync('/bin/sh', ['-c', `set -a; . "$1"; set +a; exec ${printEnv}`, 'sh', file], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return JSON.parse(output) as Record<string, string>;
}

// The env files are sourced by a shell (docker-compose.yml's services, the files' own instructions); the home's path
// is in their values (NODE_EXTRA_CA_CERTS), and a user may keep a home anywhere.
describe('env files of a home whose path holds a space and a quote', () => {
  let test: TestAzure;
  let root: string;
  let home: string;
  let copies: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'env-files-in-shell-'));
    home = join(root, "it's my home");
    copies = join(root, 'the "gateway" env $HOME `x`');
    test = await startTestAzure({ home, config: { hostEnvDirs: { gateway: copies } } });
  });
  afterAll(async () => {
    await test?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it.each([['gateway'], ['recommendation'], ['storefront']])("exports the %s host's variables, each exactly as the local Azure holds it, to a shell that sources its file", (host) => {
    const expected = test.azure.hostEnv(host);
    expect(expected.NODE_EXTRA_CA_CERTS).toContain(home);
    const sourced = sourcedInShell(join(home, 'env', `${host}.env`));
    expect(Object.fromEntries(Object.keys(expected).map((name) => [name, sourced[name]]))).toEqual(expected);
  });

  it("exports the operator's variables the same way", () => {
    const expected = test.azure.operatorEnv();
    const sourced = sourcedInShell(join(home, 'env', 'operator.env'));
    expect(Object.fromEntries(Object.keys(expected).map((name) => [name, sourced[name]]))).toEqual(expected);
  });

  it('exports the copy in a hostEnvDirs folder with that folder in NODE_EXTRA_CA_CERTS', () => {
    const expected = { ...test.azure.hostEnv('gateway'), NODE_EXTRA_CA_CERTS: join(copies, 'ca.pem') };
    const sourced = sourcedInShell(join(copies, 'gateway.env'));
    expect(Object.fromEntries(Object.keys(expected).map((name) => [name, sourced[name]]))).toEqual(expected);
  });

  it('reads back through parseEnvFile as the shell reads it (what the launcher and the tests use)', () => {
    const file = join(home, 'env', 'gateway.env');
    expect(parseEnvFile(readFileSync(file, 'utf8'))).toEqual(test.azure.hostEnv('gateway'));
  });
});
