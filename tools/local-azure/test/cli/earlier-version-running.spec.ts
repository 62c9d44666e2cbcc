import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/config/local-azure-config.js';
import { runToEnd } from '../../src/testing/index.js';
import { loadOrCreateServerCredentials } from '../../src/tls/certificate-authority.js';

const cli = join(repoRoot, 'tools/local-azure/dist/main.js');

/**
 * A local Azure of the first releases, running for `home` as far as a later version can see: the `runtime.json` those
 * releases wrote (process id, management API, CA; no instance id), and their admin API's `/health` answer. Its process
 * is this test's, which lives.
 */
async function runEarlierVersion(home: string): Promise<Server> {
  mkdirSync(join(home, 'tls'), { mode: 0o700 });
  const tls = await loadOrCreateServerCredentials(join(home, 'tls'));
  const server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' }).end(req.url === '/health' ? '{"status":"ok"}' : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const management = `https://localhost:${(server.address() as AddressInfo).port}`;
  writeFileSync(join(home, 'runtime.json'), JSON.stringify({ pid: process.pid, management, caCertPath: join(home, 'tls', 'ca.pem') }, null, 2));
  return server;
}

const cliIn = (home: string, args: string[]) => runToEnd(process.execPath, [cli, ...args], { env: { ...process.env, LOCAL_AZURE_HOME: home }, timeout: 60_000 });

describe('a local Azure home that a local Azure of an earlier version runs for', () => {
  let home: string;
  let earlier: Server;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'local-azure-earlier-running-'));
    earlier = await runEarlierVersion(home);
  });
  afterAll(async () => {
    await new Promise((resolve) => earlier?.close(resolve));
    rmSync(home, { recursive: true, force: true });
  });

  it('reads as not responding, naming that version\'s process and what to do', async () => {
    const { code, stdout } = await cliIn(home, ['status', '-o', 'json']);
    expect(code).toBe(4);
    const status = JSON.parse(stdout) as { state: string; pid: number; earlierVersion?: boolean; detail: string };
    expect(status).toMatchObject({ state: 'not-responding', pid: process.pid, earlierVersion: true });
    expect(status.detail).toContain(`A local Azure of an earlier version runs for ${home}`);
    expect(status.detail).toContain(`kill ${process.pid}`);
  });

  it('refuses a start beside it, leaving the home as that version wrote it', async () => {
    const before = readdirSync(home).sort();
    const { code, stderr } = await cliIn(home, ['start']);
    expect({ code, stderr: stderr.trim() }).toEqual({ code: 2, stderr: expect.stringContaining(`A local Azure of an earlier version runs for ${home}`) });
    expect(readdirSync(home).sort()).toEqual(before);
    expect(existsSync(join(home, 'home-format.json'))).toBe(false);
  }, 90_000);

  describe('when its admin API no longer answers (a record left behind, its process id taken by another process)', () => {
    beforeAll(async () => {
      const closed = new Promise((resolve) => earlier.close(resolve));
      earlier.closeAllConnections();
      await closed;
    });

    it('reads as stopped, so that a start carries the home forward', async () => {
      const { code, stdout } = await cliIn(home, ['status', '-o', 'json']);
      expect(code).toBe(3);
      expect(JSON.parse(stdout)).toMatchObject({ state: 'stopped' });
    });
  });
});
