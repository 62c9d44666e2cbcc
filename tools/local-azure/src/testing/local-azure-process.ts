import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile } from '@keyless/contracts';
import type { AdminClient } from '../cli/admin-client.js';
import { readRuntime } from '../cli/admin-client.js';
import { repoRoot, type LocalAzureConfigInput } from '../config/local-azure-config.js';
import { LocalAzureHome } from '../home.js';
import { waitUntilRunning } from '../runtime/status.js';
import { runToEnd } from './run-to-end.js';
import { trustCa } from './test-azure.js';
import { UserTokens } from './user-token.js';

/** The built CLI: test targets that use this build the local Azure first. */
const cli = join(repoRoot, 'tools/local-azure/dist/main.js');

/** Options of {@link LocalAzureProcess}. */
export interface LocalAzureProcessOptions {
  /** State folder. **Default**: a new temporary folder, deleted by {@link LocalAzureProcess.stop}. */
  home?: string;
  /** Configuration written to the file the process starts with. **Default**: the built-in defaults. */
  config?: LocalAzureConfigInput;
  /** Whether {@link LocalAzureProcess.stop} deletes the home. **Default**: only when no `home` was given. */
  deleteHomeOnStop?: boolean;
}

/**
 * The local Azure CLI in a child process, as `npm run local-azure` runs it — for tests that kill it, restart
 * it or drive its CLI. The home survives restarts, and with it the ports: a restarted process serves the
 * same endpoints, so clients reconnect by themselves.
 */
export class LocalAzureProcess {
  readonly home: string;
  private child: ChildProcess | undefined;
  private readonly configFile: string;
  private readonly ownsHome: boolean;
  private readonly users = new UserTokens(() => {
    const home = new LocalAzureHome(this.home);
    const runtime = readRuntime(home);
    return { ...runtime, ca: readFileSync(runtime.caCertPath, 'utf8'), homeCredentialFile: home.homeCredentialFile };
  });

  constructor(options: LocalAzureProcessOptions = {}) {
    this.ownsHome = options.deleteHomeOnStop ?? !options.home;
    this.home = options.home ?? mkdtempSync(join(tmpdir(), 'local-azure-process-'));
    this.configFile = join(this.home, 'test-config.json');
    writeFileSync(this.configFile, JSON.stringify(options.config ?? {}));
  }

  /**
   * Runs `local-azure start` and resolves once it runs — by the one ready signal, `readStatus` (the CLI's
   * `status`): its process lives and its admin API answers as this instance.
   */
  async start(timeoutInMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [cli, 'start', '--config', this.configFile], {
      env: { ...process.env, LOCAL_AZURE_HOME: this.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let output = '';
    const collect = (chunk: Buffer): void => {
      // Keep the start-up output for the error message; the pipes are drained for the child's whole life.
      if (output.length < 64 * 1024) output += chunk.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
    const status = await waitUntilRunning(new LocalAzureHome(this.home), timeoutInMs, { stopWaiting: exited });
    if (status.state === 'running') return;
    if (exited()) {
      await new Promise((resolve) => (child.stdout!.readableEnded ? resolve(undefined) : child.stdout!.once('end', resolve)));
      throw new Error(`the local Azure exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`);
    }
    throw new Error(`the local Azure did not start within ${timeoutInMs} ms (${status.detail}):\n${output}`);
  }

  /** Runs a CLI command against this home (and the instance running there); resolves with exit code and output. */
  async run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const { code, stdout, stderr } = await runToEnd(process.execPath, [cli, ...args], { env: { ...process.env, LOCAL_AZURE_HOME: this.home, ...env } });
    return { code: code ?? -1, stdout, stderr };
  }

  /**
   * Injects a fault through the CLI (`fault <target> <mode> [ms]`; mode `none` heals), as an operator would.
   *
   * @throws {Error} with the CLI's message when the CLI refuses (unknown target or mode).
   */
  async fault(target: string, mode: string, delayInMs?: number): Promise<void> {
    const result = await this.run(['fault', target, mode, ...(delayInMs !== undefined ? [String(delayInMs)] : [])]);
    if (result.code !== 0) throw new Error(`fault ${target} ${mode} failed: ${result.stderr.trim()}`);
  }

  /** An ARM access token of a user of the local tenant (**default**: the operator), as `TestAzure.operatorToken`. */
  operatorToken(username?: string): Promise<string> {
    return this.users.token(username);
  }

  /** A management API client acting as that user (**default**: the operator). */
  admin(username?: string): AdminClient {
    return this.users.client(username);
  }

  /** The id of the process {@link start} started (the local Azure itself: `start` re-executes in place). */
  get pid(): number | undefined {
    return this.child?.pid;
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

  /** A host's variables, from the env file the process wrote. */
  hostEnv(host: string): Record<string, string> {
    return parseEnvFile(readFileSync(join(this.home, 'env', `${host}.env`), 'utf8'));
  }

  /**
   * Makes this test process a process on `host`: exports the host's env file and trusts the local CA (a
   * running process cannot pick up NODE_EXTRA_CA_CERTS itself).
   */
  enterHost(host: string): Record<string, string> {
    const env = this.hostEnv(host);
    Object.assign(process.env, env);
    trustCa(readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8'));
    return env;
  }

  /** Stops the process (SIGTERM) and deletes the home if this object created it (or was told to). */
  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    if (this.ownsHome) rmSync(this.home, { recursive: true, force: true });
  }
}

/** Free loopback ports, to fix a child's listeners for its whole life (a restart keeps its endpoints). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve) => {
        const server = createServer();
        server.listen(0, '127.0.0.1', () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
