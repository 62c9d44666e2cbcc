import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalAzureConfigInput } from '../../src/config/local-azure-config.js';

const hooks = fileURLToPath(new URL('./typescript-hooks.ts', import.meta.url));
const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** The local Azure CLI (`main.ts`) running from source in a child process, as `npm run local-azure` runs it. */
export class ChildAzure {
  private child: ChildProcess | undefined;
  private readonly configFile: string;

  constructor(
    readonly home: string,
    config: LocalAzureConfigInput,
  ) {
    this.configFile = join(home, 'test-config.json');
    writeFileSync(this.configFile, JSON.stringify(config));
  }

  /** Starts `local-azure start` and resolves once it reports ready. */
  async start(timeoutInMs = 20_000): Promise<void> {
    const child = spawn(process.execPath, ['--import', hooks, main, 'start', '--config', this.configFile], {
      env: { ...process.env, LOCAL_AZURE_HOME: this.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the local Azure did not start within ${timeoutInMs} ms:\n${output}`)), timeoutInMs);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Local Azure ready in')) {
          clearTimeout(timer);
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

  /** Runs a CLI command (against the running instance); resolves with its exit code and output. */
  run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const cli = spawn(process.execPath, ['--import', hooks, main, ...args], {
        env: { ...process.env, LOCAL_AZURE_HOME: this.home, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      cli.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      cli.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  /** Kills the process (SIGKILL: no clean-up at all) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** A host's variables, read from the env file the child wrote. */
  hostEnv(host: string): Record<string, string> {
    const lines = readFileSync(join(this.home, 'env', `${host}.env`), 'utf8').split('\n');
    return Object.fromEntries(lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  }
}

/** Free loopback ports for the child's listeners (fixed, so a restarted child keeps its endpoints). */
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
