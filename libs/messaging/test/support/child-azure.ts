import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@keyless/local-azure';
import { trustCa } from '@keyless/local-azure/testing';
import { writeTestTopology, type TopologyOverrides } from './test-bus.js';

/** The built local Azure CLI (`npx nx build local-azure`; the test target builds dependencies first). */
const cli = join(repoRoot, 'tools/local-azure/dist/main.js');

/**
 * The local Azure CLI in a child process, as `npm run local-azure` runs it, on fixed ports (so clients
 * reconnect to the same address after a restart) in a temporary home that survives restarts.
 */
export class ChildAzure {
  readonly home = mkdtempSync(join(tmpdir(), 'messaging-child-azure-'));
  private child: ChildProcess | undefined;
  private readonly configFile = join(this.home, 'config.json');

  /** Starts the first time; `ports` are picked once, free at that moment. */
  static async create(topology: TopologyOverrides = {}): Promise<ChildAzure> {
    const azure = new ChildAzure();
    const [identity, login, management, serviceBus] = await freePorts(4);
    const topologyFile = writeTestTopology(azure.home, topology);
    writeFileSync(azure.configFile, JSON.stringify({ network: { ports: { identity, login, management, serviceBus } }, resources: { serviceBus: { topologyFile } } }));
    await azure.start();
    return azure;
  }

  /** Starts `local-azure start` and resolves once it reports ready. */
  async start(timeoutInMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [cli, 'start', '--config', this.configFile], { env: { ...process.env, LOCAL_AZURE_HOME: this.home }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the local Azure did not start within ${timeoutInMs} ms:\n${output}`)), timeoutInMs);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Local Azure ready in')) {
          clearTimeout(timer);
          child.stdout!.off('data', onData);
          child.stderr!.off('data', onData);
          child.stdout!.resume();
          child.stderr!.resume();
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the local Azure exited (${code ?? signal}) before it was ready:\n${output}`));
      });
    });
  }

  /** Sends `signal` (SIGKILL: no clean-up at all) and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /**
   * Makes this process a process on `host`: exports the host's env file and trusts the local CA (a
   * running process cannot pick up NODE_EXTRA_CA_CERTS itself).
   */
  enterHost(host: string): Record<string, string> {
    const lines = readFileSync(join(this.home, 'env', `${host}.env`), 'utf8').split('\n');
    const env = Object.fromEntries(lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    Object.assign(process.env, env);
    trustCa(readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8'));
    return env;
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Free loopback ports (fixed for the child's life, so a restarted child keeps its endpoints). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
