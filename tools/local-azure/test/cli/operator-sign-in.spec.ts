import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LocalAzureProcess } from '../../src/testing/index.js';

// The CLI as a signed-in az: it signs in as the operator by itself, `login`/`logout` switch users, tokens are
// cached with mode 0600 in the home and renewed with the refresh token.
/** Each test runs several CLI processes (a Node start each); on a busy machine that takes seconds. */
const cliTestTimeoutInMs = 60_000;

describe('local-azure CLI sign-in', () => {
  let azure: LocalAzureProcess;
  const run = (...args: string[]) => azure.run(args);
  const cacheFile = (): string => join(azure.home, 'cli', 'token-cache.json');
  const grant = ['role', 'assignment', 'create', '--assignee', 'id-storefront', '--role', 'Azure Service Bus Data Sender', '--scope', 'serviceBus/queues/replies', '-o', 'json'];

  beforeAll(async () => {
    // Access tokens of users live 60 s here, so every command renews its token (MSAL renews 5 minutes ahead).
    azure = new LocalAzureProcess({ config: { userTokenLifetimeSeconds: 60, users: { reader: { roleAssignments: [{ role: 'Reader', scope: 'subscription' }] } } } });
    await azure.start();
  }, cliTestTimeoutInMs);
  afterAll(() => azure.stop());

  it('signs in as the operator on first use even when that is account show', async () => {
    const shown = await run('account', 'show', '-o', 'json');
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ username: 'operator@keylesslocal.onmicrosoft.com' });
  }, cliTestTimeoutInMs);

  it('signs in as the operator on first use, and caches the tokens with mode 0600', async () => {
    const listed = await run('role', 'assignment', 'list', '--assignee', 'operator', '-o', 'json');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { roleDefinitionName: string }[]).map((a) => a.roleDefinitionName).sort()).toEqual(['Azure Service Bus Data Owner', 'Owner']);
    const account = JSON.parse((await run('account', 'show', '-o', 'json')).stdout) as Record<string, string>;
    expect(account).toMatchObject({ username: 'operator@keylesslocal.onmicrosoft.com', name: 'Local Azure operator', objectId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(statSync(cacheFile()).mode & 0o777).toBe(0o600);
    expect(statSync(join(azure.home, 'cli')).mode & 0o777).toBe(0o700);
  }, cliTestTimeoutInMs);

  it('renews its access token with the refresh token, without signing in again', async () => {
    const cached = (): { refreshToken: string; accessTokens: Record<string, { token: string }> } => JSON.parse(readFileSync(cacheFile(), 'utf8'));
    const before = cached();
    expect((await run('resource', 'list', '-o', 'json')).code).toBe(0);
    const after = cached();
    expect(after.refreshToken).toBe(before.refreshToken);
    expect(Object.values(after.accessTokens)[0]!.token).not.toBe(Object.values(before.accessTokens)[0]!.token);
    const signIns = JSON.parse((await run('log', 'sign-ins', '-o', 'json', '--limit', '5')).stdout) as { endpoint: string; grantType?: string; identity?: string }[];
    expect(signIns.filter((s) => s.endpoint === 'token').slice(0, 2)).toEqual([
      expect.objectContaining({ grantType: 'refresh_token', identity: 'operator@keylesslocal.onmicrosoft.com' }),
      expect.objectContaining({ grantType: 'refresh_token' }),
    ]);
  }, cliTestTimeoutInMs);

  it('switches to a user without write rights, who gets 403 for a role assignment, and back', async () => {
    const login = await run('login', '--username', 'reader', '-o', 'json');
    expect(JSON.parse(login.stdout)).toMatchObject({ username: 'reader@keylesslocal.onmicrosoft.com' });
    expect((await run('role', 'assignment', 'list', '-o', 'json')).code).toBe(0);

    const refused = await run(...grant);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /\(AuthorizationFailed\) The client 'reader@keylesslocal\.onmicrosoft\.com' with object id '[0-9a-f-]{36}' does not have authorization to perform action 'Microsoft\.Authorization\/roleAssignments\/write' over scope '\/subscriptions\/.*\/queues\/replies\/providers\/Microsoft\.Authorization\/roleAssignments\//,
    );
    // ARM's text names the user; the CLI adds how to get back to the operator.
    expect(refused.stderr).toContain("\nThe CLI is signed in as reader@keylesslocal.onmicrosoft.com: `");
    expect(refused.stderr).toContain("npm run local-azure -- login` signs the operator (Owner of the subscription) in again.");

    expect((await run('login')).code).toBe(0);
    const granted = await run(...grant);
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toMatchObject({ roleDefinitionName: 'Azure Service Bus Data Sender', source: 'cli' });
  }, cliTestTimeoutInMs);

  it('refuses every command after logout until the next login', async () => {
    expect((await run('logout')).stdout).toBe('Signed out operator@keylesslocal.onmicrosoft.com.\n');
    const refused = await run('resource', 'list');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Not signed in. Run `LOCAL_AZURE_HOME=');
    expect(refused.stderr).toContain(' npm run local-azure -- login` (add --username');
    expect((await run('account', 'show')).code).toBe(2);
    expect((await run('login', '--username', 'nobody')).stderr).toContain('AADSTS50034: The user account nobody@keylesslocal.onmicrosoft.com does not exist');
    expect((await run('login')).code).toBe(0);
    expect((await run('resource', 'list')).code).toBe(0);
  }, cliTestTimeoutInMs);

  it('never writes the home credential anywhere but its own file', async () => {
    const credential = readFileSync(join(azure.home, 'data', 'home-credential'), 'utf8').trim();
    expect(statSync(join(azure.home, 'data', 'home-credential')).mode & 0o777).toBe(0o600);
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
    const others = files(azure.home).filter((file) => !file.endsWith('home-credential'));
    expect(others.some((file) => file.endsWith('.env'))).toBe(true);
    for (const file of others) expect([file, readFileSync(file).includes(credential)]).toEqual([file, false]);
  }, cliTestTimeoutInMs);
});
