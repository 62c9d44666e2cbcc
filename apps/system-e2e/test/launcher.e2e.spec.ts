import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { localAzureStatus, repoRoot, waitFor } from '@keyless/launcher';
import { launcherPort, NpmStart } from './npm-start.js';

/** The pids of `parent`'s children (Linux), to kill what `npm start` started as a user would with `kill -9`. */
function childrenOf(parent: number): number[] {
  return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

function commandOf(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
}

// `npm start` itself (the launcher's main, as npm runs it): what a user sees when one of its processes dies.
describe('npm start, when one of its processes is killed', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'keyless-launcher-e2e-'));
  const home = join(scratch, 'state');
  let npmStart: NpmStart;
  let gatewayPort: number;
  // An alert webhook receiver, as an Azure Monitor action group's would be.
  const alerts: { essentials: { alertRule: string; monitorCondition: string } }[] = [];
  let webhook: Server;

  beforeAll(async () => {
    webhook = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        alerts.push((JSON.parse(body) as { data: (typeof alerts)[number] }).data);
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(webhook.address() as { port: number }).port}/alerts`;
    gatewayPort = await launcherPort();
    npmStart = await NpmStart.start({ LOCAL_AZURE_HOME: home, PORT: String(gatewayPort), KEYLESS_DEMO_CATALOG: 'false', KEYLESS_REPLICAS: '1', LOCAL_AZURE_ALERT_WEBHOOK: webhookUrl });
  }, 200_000);

  afterAll(async () => {
    await npmStart?.stop();
    webhook.close();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  const pidOf = (script: string): number => childrenOf(npmStart.child.pid!).find((pid) => commandOf(pid).includes(script))!;
  const ready = async (): Promise<boolean> => (await fetch(`http://127.0.0.1:${gatewayPort}/health/ready`).catch(() => undefined))?.status === 200;

  it("hands the local Azure's own settings on to it: alerts are POSTed to LOCAL_AZURE_ALERT_WEBHOOK", async () => {
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [join(repoRoot, 'tools/local-azure/dist/main.js'), ...args], { env: { ...process.env, LOCAL_AZURE_HOME: home } });
    await cli('fault', 'identity-endpoint', 'error');
    try {
      await waitFor(() => alerts.some((alert) => alert.essentials.monitorCondition === 'Fired'), 30_000, () => `no alert reached the webhook:\n${npmStart.output}`);
    } finally {
      await cli('fault', 'identity-endpoint', 'none');
    }
    expect(alerts[0]!.essentials.alertRule).toBe('Managed identity endpoint failing');
    await waitFor(ready, 60_000, () => `the gateway did not become ready again:\n${npmStart.output}`);
  }, 120_000);

  it('starts the local Azure again on the same home, and the services find it by themselves', async () => {
    const before = await localAzureStatus(home);
    const gateway = pidOf('apps/gateway/dist/main.js');
    process.kill(before.pid!, 'SIGKILL');
    await waitFor(() => npmStart.output.includes('✓ local-azure runs again'), 60_000, () => `the local Azure was not started again:\n${npmStart.output}`);
    expect(npmStart.output).toContain('local-azure exited (signal SIGKILL); starting it again on the same home');
    const after = await localAzureStatus(home);
    expect(after.state).toBe('running');
    expect(after.pid).not.toBe(before.pid);
    expect(after.management).toBe(before.management);
    // The services were not restarted: the gateway's process is the same, and it is ready again on its own.
    expect(pidOf('apps/gateway/dist/main.js')).toBe(gateway);
    await waitFor(ready, 60_000, () => `the gateway did not become ready again:\n${npmStart.output}`);
  }, 120_000);

  it('starts a killed service instance again on its port', async () => {
    const gateway = pidOf('apps/gateway/dist/main.js');
    process.kill(gateway, 'SIGKILL');
    await waitFor(() => npmStart.output.includes('✓ gateway runs again'), 60_000, () => `the gateway was not started again:\n${npmStart.output}`);
    expect(npmStart.output).toContain('gateway exited (signal SIGKILL); starting it again…');
    expect(pidOf('apps/gateway/dist/main.js')).not.toBe(gateway);
    expect(await ready()).toBe(true);
  }, 120_000);

  it('stops everything it runs on Ctrl-C, the restarted ones included', async () => {
    const localAzure = (await localAzureStatus(home)).pid!;
    expect(await npmStart.stop()).toBe(0);
    expect(npmStart.output).toContain('Stopped.');
    // Only the two kills above were restarts: the processes Ctrl-C stopped were not started again.
    expect(npmStart.output.match(/starting it again/g)).toHaveLength(2);
    expect((await localAzureStatus(home)).state).toBe('stopped');
    expect(() => process.kill(localAzure, 0)).toThrow();
  }, 60_000);
});
