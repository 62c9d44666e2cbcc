import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalAzureProcess, trustCa } from '../../src/testing/index.js';
import type { LocalAzureStatus } from '../../src/runtime/status.js';

/** What a client of the local Azure depends on: endpoints, ids and trust material. */
interface Snapshot {
  envFiles: Record<string, string>;
  ports: string;
  caCert: string;
  serverCert: string;
  jwks: unknown;
}

async function snapshot(azure: LocalAzureProcess): Promise<Snapshot> {
  const env = azure.hostEnv('gateway');
  const jwks = await (await fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}/discovery/v2.0/keys`)).json();
  const envDir = join(azure.home, 'env');
  return {
    envFiles: Object.fromEntries(readdirSync(envDir).map((file) => [file, readFileSync(join(envDir, file), 'utf8')])),
    ports: readFileSync(join(azure.home, 'ports.json'), 'utf8'),
    caCert: readFileSync(join(azure.home, 'tls', 'ca.pem'), 'utf8'),
    serverCert: readFileSync(join(azure.home, 'tls', 'server.pem'), 'utf8'),
    jwks,
  };
}

async function status(azure: LocalAzureProcess): Promise<{ code: number; status: LocalAzureStatus }> {
  const { code, stdout } = await azure.run(['status', '--output', 'json']);
  return { code, status: JSON.parse(stdout) as LocalAzureStatus };
}

/** A token from the host's managed-identity endpoint, as the SDK gets one. */
async function token(env: Record<string, string>, resource: string): Promise<string> {
  const query = new URLSearchParams({ 'api-version': '2019-08-01', resource, client_id: env.AZURE_CLIENT_ID! });
  const response = await fetch(`${env.IDENTITY_ENDPOINT}?${query}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
  return ((await response.json()) as { access_token: string }).access_token;
}

async function chat(env: Record<string, string>, accessToken: string): Promise<number> {
  const url = `${env.AZURE_OPENAI_ENDPOINT}/openai/deployments/${env.AZURE_OPENAI_CHAT_DEPLOYMENT}/chat/completions?api-version=${env.OPENAI_API_VERSION}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Reply with OK' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

// The local Azure runs as the CLI in a child process with the built-in defaults: no port is configured,
// so whatever it serves after a restart comes from what it kept in its home.
describe('A local Azure restarted on the same home', () => {
  const azure = new LocalAzureProcess();

  beforeAll(async () => {
    await azure.start();
    trustCa(readFileSync(join(azure.home, 'tls', 'ca.pem'), 'utf8'));
  }, 30_000);
  afterAll(() => azure.stop(), 30_000);

  it.each(['SIGKILL', 'SIGTERM'] as const)('serves the same endpoints, tenant, keys and certificates after %s, and its env files stay', async (signal) => {
    const before = await snapshot(azure);
    const env = azure.hostEnv('gateway');
    const issuedBefore = await token(env, 'https://cognitiveservices.azure.com');

    await azure.kill(signal);
    const down = await status(azure);
    expect(down).toMatchObject({ code: 3, status: { state: 'stopped' } });
    expect(down.status.detail).toMatch(signal === 'SIGKILL' ? /is gone without cleaning up/ : /No local Azure runs/);
    expect(readFileSync(join(azure.home, 'env', 'gateway.env'), 'utf8')).toBe(before.envFiles['gateway.env']);

    await azure.start();
    expect(await snapshot(azure)).toEqual(before);
    // A token issued before the restart is still accepted: same tenant, same signing keys.
    expect(await chat(env, issuedBefore)).toBe(200);
    expect(await status(azure)).toMatchObject({ code: 0, status: { state: 'running', endpoints: { identity: env.IDENTITY_ENDPOINT!.replace(/\/hosts\/.*$/, '') } } });
  }, 60_000);

  it('answers its health probe without a token, with nothing but liveness, and nothing else without one', async () => {
    const { status: running } = await status(azure);
    const health = await fetch(`${running.management}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', instanceId: running.instanceId });
    for (const path of ['/health/x', '/resources', '/tenant']) expect((await fetch(`${running.management}${path}`)).status).toBe(401);
    expect((await fetch(`${running.management}/health`, { method: 'POST' })).status).toBe(401);
  }, 30_000);

  it('reports a frozen process as not answering, never as running', async () => {
    const { status: running } = await status(azure);
    process.kill(running.pid!, 'SIGSTOP');
    try {
      expect(await status(azure)).toMatchObject({ code: 4, status: { state: 'not-responding', pid: running.pid } });
    } finally {
      process.kill(running.pid!, 'SIGCONT');
    }
    expect(await status(azure)).toMatchObject({ code: 0, status: { state: 'running' } });
  }, 30_000);

  it('refuses to start a second local Azure on the same home', async () => {
    const second = await azure.run(['start']);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`A local Azure already runs for ${azure.home} \\(running, pid \\d+`));
  }, 30_000);

  it('refuses to start when a kept port is taken, naming the port and what to do', async () => {
    const { status: running } = await status(azure);
    const port = running.ports!.management!;
    await azure.kill('SIGKILL');
    const squatter = await occupy(port);
    try {
      const refused = await azure.run(['start']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`Port ${port} of the management listener (kept in ${join(azure.home, 'ports.json')}`);
      expect(refused.stderr).toMatch(/Stop the process that holds it .* or set network\.ports\.management .* or delete .*ports\.json/);
      expect((await status(azure)).status.state).toBe('stopped');
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    // No start again here: while this local Azure is down its other kept ports are free, and a parallel spec's
    // port-0 listener may take one (a CI run saw the vision port taken, and the refusal above, rightly, for it).
    // afterAll's stop needs no running process.
  }, 60_000);
});

describe('A local Azure with a configured port', () => {
  const home = mkdtempSync(join(tmpdir(), 'local-azure-ports-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('binds the configured port instead of the kept one, keeps the others, and keeps the configured one for later starts', async () => {
    const first = new LocalAzureProcess({ home });
    await first.start();
    const kept = JSON.parse(readFileSync(join(home, 'ports.json'), 'utf8')) as Record<string, number>;
    await first.kill('SIGTERM');

    const squatter = await occupy(0);
    const { port: wanted } = squatter.address() as { port: number };
    await new Promise((resolve) => squatter.close(resolve));
    const configured = new LocalAzureProcess({ home, config: { network: { ports: { login: wanted } } } });
    await configured.start();
    const running = JSON.parse((await configured.run(['status', '-o', 'json'])).stdout) as LocalAzureStatus;
    expect(running.ports).toEqual({ ...kept, login: wanted });
    expect(running.endpoints!.login).toBe(`https://localhost:${wanted}`);
    await configured.kill('SIGTERM');

    const again = new LocalAzureProcess({ home });
    await again.start();
    expect(JSON.parse(readFileSync(join(home, 'ports.json'), 'utf8'))).toEqual({ ...kept, login: wanted });
    await again.kill('SIGTERM');
  }, 60_000);
});
