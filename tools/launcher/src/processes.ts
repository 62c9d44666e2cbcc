import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { extname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '@keyless/contracts';
import { RotatingLog, rotatingLogDefaults } from './rotating-log.js';

/** A child process the launcher owns: its name, its log file, and how to stop it. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** The last lines the process printed (at most {@link outputTailLines}), for an error message when it exits. */
  tail(): string;
}

/** Preloaded into every process started: it stops itself once the launcher is gone (see child-guard.ts). */
const childGuard = new URL(`./child-guard${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

/** The processes {@link startProcess} started that have not exited: what a suspension of the launcher suspends too. */
const live = new Set<ChildProcess>();

/** How many of a process's last output lines {@link ManagedProcess.tail} keeps. */
export const outputTailLines = 15;

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  name: string;
  /** Script to run with this Node (the launcher's own, Node 24). */
  script: string;
  args?: readonly string[];
  /** Options for Node.js itself, before the script (e.g. `--cpu-prof`). **Default**: none. */
  nodeArgs?: readonly string[];
  env: Record<string, string>;
  logDir: string;
  /**
   * Size at which the log file is set aside as `<name>.log.1` and a new one begun (see {@link RotatingLog}), in
   * bytes. **Default**: 32 MiB.
   */
  maxLogBytes?: number;
  /** Called with each stderr/stdout line worth showing on the console (warnings and errors). */
  onNotableLine?: (line: string) => void;
}

/**
 * Starts a Node script as a child process with exactly the environment given (plus PATH), writing its
 * output to `<logDir>/<name>.log` (capped: the lines before the newest are in `<name>.log.1`). Lines that look like warnings or errors are passed to `onNotableLine`.
 *
 * On POSIX the process runs in a process group of its own: a terminal's Ctrl-C (SIGINT to the foreground group)
 * reaches the launcher only, which stops its processes in order ({@link stopProcess}). It stops itself when the
 * launcher is gone, however that happened: its stdin is a pipe from the launcher, watched by child-guard.ts. The
 * same separation keeps a terminal's Ctrl-Z from it: {@link followJobControl} suspends and continues it with the launcher.
 */
export function startProcess(options: StartProcessOptions): ManagedProcess {
  // Like the rest of the home: only its owner reads the services' logs (an older launcher made the folder 0755).
  mkdirSync(options.logDir, { recursive: true, mode: 0o700 });
  chmodSync(options.logDir, 0o700);
  const logFile = join(options.logDir, `${options.name}.log`);
  // A log that cannot be written (its folder removed) must not end the launcher: the process keeps running.
  const log = new RotatingLog(logFile, options.maxLogBytes ?? rotatingLogDefaults.maxBytes, (error) =>
    process.stderr.write(`launcher: cannot write ${logFile}: ${error.message}\n`),
  );
  const child = spawn(process.execPath, ['--import', childGuard, ...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Windows has no process groups to leave: a detached process gets a console window of its own there, and the
    // console's Ctrl-C still reaches every process attached to it, as before.
    detached: process.platform !== 'win32',
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const recent: string[] = [];
  const forward = (chunk: Buffer): void => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) recent.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    recent.splice(0, Math.max(0, recent.length - outputTailLines));
    if (!options.onNotableLine) return;
    for (const line of chunk.toString('utf8').split('\n')) {
      if (isNotable(line)) options.onNotableLine(summarise(line));
    }
  };
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  // The log is flushed before `exited` resolves, so whoever reads it after the exit finds every line. 'close' (the
  // output read to the end) normally follows 'exit' at once; a grandchild that inherited the pipes can hold it
  // open, so the wait for it is bounded.
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(bound);
        log.end(() => resolve(code));
      };
      const bound = setTimeout(finish, 1_000);
      child.once('close', finish);
    }),
  );
  return { name: options.name, child, logFile, exited, tail: () => recent.join('\n') };
}

/**
 * Sends SIGTERM and waits for the exit; SIGKILL after `graceInMs`. A suspended process (Ctrl-Z, then a stop) is
 * continued after the SIGTERM, which it could not act on while suspended.
 */
export async function stopProcess(process_: ManagedProcess, graceInMs = 15_000): Promise<void> {
  if (process_.child.exitCode !== null || process_.child.signalCode !== null) return;
  process_.child.kill('SIGTERM');
  signalGroup(process_.child, 'SIGCONT');
  const timer = setTimeout(() => process_.child.kill('SIGKILL'), graceInMs);
  await process_.exited;
  clearTimeout(timer);
}

/**
 * Makes a terminal's job control apply to the whole system: SIGTSTP (Ctrl-Z) suspends every process {@link startProcess}
 * started, then the launcher itself; SIGCONT (`fg`, `bg`) continues them. Without it they would run on while the
 * launcher is suspended, as they run in process groups of their own (POSIX only; Windows has no job control).
 *
 * Rules:
 * - The processes are suspended with SIGSTOP to their process groups (the local Azure's PostgreSQL engine is in its
 *   group): SIGSTOP cannot be caught or ignored, so none of them runs on.
 * - The launcher then suspends itself with SIGSTOP: its SIGTSTP handler replaces the default action, and a re-raised
 *   SIGTSTP is discarded in a process group without a parent shell (an orphaned one), which would leave the processes
 *   suspended under a launcher that runs.
 * - Nothing stays suspended forever. A stop continues what it stops ({@link stopProcess}). A launcher killed while
 *   suspended (`kill -9 %1`) cannot continue its processes, and they cannot notice it is gone (child-guard.ts) while
 *   suspended: a small keeper process, started at each suspension and not suspended itself, continues them once the
 *   launcher's pipe to it closes, which only the launcher's end closes; each then stops itself. A launcher that
 *   continues ends the keeper instead (SIGKILL), so that a keeper's late SIGCONT cannot undo the next Ctrl-Z.
 */
export function followJobControl(): void {
  if (process.platform === 'win32') return;
  let keeper: ChildProcess | undefined;
  const endKeeper = (): void => {
    keeper?.kill('SIGKILL');
    keeper?.stdin?.destroy();
    keeper = undefined;
  };
  process.on('SIGTSTP', () => {
    const groups = [...live].flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
    endKeeper();
    keeper = startKeeper(groups);
    for (const child of live) signalGroup(child, 'SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  });
  process.on('SIGCONT', () => {
    for (const child of live) signalGroup(child, 'SIGCONT');
    endKeeper();
  });
}

/**
 * Starts the keeper of a suspension: a shell that waits for the end of its stdin (a pipe from the launcher: its end
 * closes when the launcher is gone), then continues the process groups `groups`. It runs in a session of its own
 * (`detached`), out of reach of the terminal's Ctrl-Z, and nothing waits for it.
 */
function startKeeper(groups: readonly number[]): ChildProcess | undefined {
  try {
    const keeper = spawn('/bin/sh', ['-c', 'read -r _; for group do kill -s CONT -- "-$group" 2>/dev/null; done', 'keeper', ...groups.map(String)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    // A keeper that could not start (no /bin/sh) must not end the launcher: the suspension works without it.
    keeper.once('error', () => undefined);
    keeper.stdin!.on('error', () => undefined);
    keeper.unref();
    return keeper;
  } catch {
    return undefined;
  }
}

/** Sends `signal` to the process group `child` leads (see {@link startProcess}); a group already gone is no error. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || process.platform === 'win32') return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: every process of the group has exited.
  }
}

/** Reads an env file written by the local Azure (`NAME=value` lines quoted for a POSIX shell, # comments; see `parseEnvFile`). */
export function readEnvFile(path: string): Record<string, string> {
  const text = readFileSync(path, 'utf8');
  try {
    return parseEnvFile(text);
  } catch (error) {
    // parseEnvFile names the line and the fix; the file is named here.
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Waits until `check` is true, polling every `intervalInMs`; throws `message` after `timeoutInMs`. An abort of
 * `signal` ends the wait between two checks at once, rejecting with the signal's reason.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutInMs: number, message: () => string, intervalInMs = 100, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutInMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message());
    await sleep(intervalInMs, undefined, signal ? { signal } : {}).catch((error: unknown) => {
      signal?.throwIfAborted();
      throw error;
    });
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function isNotable(line: string): boolean {
  if (!line.trim()) return false;
  if (line.startsWith('{')) {
    try {
      const entry = JSON.parse(line) as { level?: number };
      return (entry.level ?? 0) >= 40; // pino: 40 warn, 50 error, 60 fatal
    } catch {
      return false;
    }
  }
  return /\b(error|failed|denied|refused)\b/i.test(line);
}

function summarise(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as { level?: number; message?: string; msg?: string; context?: string };
    return `${(entry.level ?? 0) >= 50 ? 'error' : 'warn'}: ${entry.context ? `${entry.context}: ` : ''}${entry.message ?? entry.msg ?? line}`;
  } catch {
    return line;
  }
}
