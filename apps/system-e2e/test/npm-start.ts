import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, waitFor } from '@keyless/launcher';
import { freeAdjacentPorts } from '@keyless/testing';

/** A gateway port whose neighbour (the demo image server's, PORT+1) is free too, as `npm start` needs. */
export const launcherPort = (): Promise<number> => freeAdjacentPorts(2);

/** `npm start` (the launcher's main, as npm runs it) in a child process, and everything it printed so far. */
export class NpmStart {
  output = '';

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /**
   * Starts it with `env` added to this process's environment and waits until it says the system is running.
   *
   * @throws {Error} with its output when it exits or has not finished starting within 180 s (it is stopped then).
   */
  static async start(env: Record<string, string>): Promise<NpmStart> {
    const started = new NpmStart(spawn(process.execPath, [join(repoRoot, 'tools/launcher/dist/main.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    const running = (): boolean => started.output.includes('Keyless is running.');
    try {
      await waitFor(() => running() || started.child.exitCode !== null, 180_000, () => 'npm start did not finish starting within 180 s');
      if (!running()) throw new Error(`npm start exited (${started.child.exitCode}) before the system ran`);
    } catch (error) {
      await started.stop();
      throw new Error(`${(error as Error).message}:\n${started.output}`, { cause: error });
    }
    return started;
  }

  /** Stops it as Ctrl-C does, if it still runs; resolves with its exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGINT');
    return exited;
  }
}
