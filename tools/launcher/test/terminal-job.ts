import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freeAdjacentPorts } from '@keyless/testing';
import { waitFor } from '../src/processes.js';

const launcher = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Every process descended from `pid` (its children, theirs, …), from `ps` (POSIX). */
export function descendantsOf(pid: number): number[] {
  const rows = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((row) => row.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  for (let parents = [pid]; parents.length; ) {
    parents = rows.filter(([, ppid]) => parents.includes(ppid)).map(([child]) => child);
    found.push(...parents);
  }
  return found;
}

/**
 * Whether `pid` still runs. One that has exited but is not reaped yet (a zombie: its launcher is gone, and the process
 * that inherited it reaps when it gets to it) does not.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return processState(pid) !== 'Z';
}

/**
 * A process's state letter from /proc/<pid>/stat (Linux): `T` suspended (stopped by a signal), `S`/`R` running,
 * `Z` exited but not yet reaped; undefined once it is gone.
 */
export function processState(pid: number): string | undefined {
  try {
    // The command name (field 2) is in parentheses and may hold spaces: the state follows its closing one.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * `npm start` as a terminal runs it: the foreground job, a process group of its own, which a terminal's Ctrl-C
 * (SIGINT) and Ctrl-Z (SIGTSTP) signal as a whole, as the shell's `fg` (SIGCONT) does.
 */
export class TerminalJob {
  output = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code)));
  }

  /** Starts it with its state in `home` on free ports, with `env` added to this process's environment. */
  static async start(home: string, env: Record<string, string> = {}): Promise<TerminalJob> {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !['LOCAL_AZURE_HOME', 'LOCAL_AZURE_CONFIG', 'PORT', 'KEYLESS_DEMO_CATALOG'].includes(key)));
    const settings = { ...inherited, LOCAL_AZURE_HOME: home, PORT: String(await freeAdjacentPorts(2)), ...env }; // PORT and PORT+1 (the demo images)
    return new TerminalJob(spawn(process.execPath, [launcher], { env: settings, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Sends `signal` to the job's whole process group, as the terminal (Ctrl-C, Ctrl-Z) or the shell (`fg`) does. */
  signal(signal: NodeJS.Signals): void {
    process.kill(-this.child.pid!, signal);
  }

  /** Waits until it prints `text` (it fails, with the output, if it exits first or takes over 180 s). */
  async printed(text: string): Promise<void> {
    await waitFor(
      () => this.output.includes(text) || this.child.exitCode !== null || this.child.signalCode !== null,
      180_000,
      () => `npm start did not print "${text}" within 180 s:\n${this.output}`,
    );
    if (!this.output.includes(text)) throw new Error(`npm start exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.output}`);
  }

  /** Waits until the demo catalog is being loaded: every process runs, and requests and events are under way. */
  loadingTheCatalog(): Promise<void> {
    return this.printed('Loading the demo catalog');
  }
}
