import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeAdjacentPorts } from '@keyless/testing';
import { waitFor } from '../src/processes.js';

const launcher = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Every process descended from `pid` (its children, theirs, …), from `ps` (POSIX). */
function descendantsOf(pid: number): number[] {
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `npm start` as a terminal runs it: the foreground job, a process group of its own, which a terminal's Ctrl-C
 * signals as a whole.
 */
class TerminalJob {
  output = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code)));
  }

  static async start(home: string): Promise<TerminalJob> {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !['LOCAL_AZURE_HOME', 'LOCAL_AZURE_CONFIG', 'PORT', 'KEYLESS_DEMO_CATALOG'].includes(key)));
    const env = { ...inherited, LOCAL_AZURE_HOME: home, PORT: String(await freeAdjacentPorts(2)) }; // PORT and PORT+1 (the demo images)
    return new TerminalJob(spawn(process.execPath, [launcher], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Waits until the demo catalog is being loaded: every process runs, and requests and events are under way. */
  async loadingTheCatalog(): Promise<void> {
    await waitFor(
      () => this.output.includes('Loading the demo catalog') || this.child.exitCode !== null,
      180_000,
      () => `npm start did not begin to load the demo catalog within 180 s:\n${this.output}`,
    );
    if (this.child.exitCode !== null) throw new Error(`npm start exited (${this.child.exitCode}):\n${this.output}`);
  }
}

describe('npm start, when stopped', () => {
  let scratch: string;
  let job: TerminalJob | undefined;
  let started: number[] = [];
  beforeEach(() => (scratch = mkdtempSync(join(tmpdir(), 'launcher-stop-'))));
  afterEach(() => {
    // Whatever a failed run left behind is ended here, so that no test leaves processes running.
    for (const pid of [job?.child.pid ?? 0, ...started]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    job = undefined;
    started = [];
    rmSync(scratch, { recursive: true, force: true });
  });

  describe("by Ctrl-C in its terminal (SIGINT to the whole process group) while it loads the demo catalog", () => {
    it('stops the services, then the local Azure, quietly and quickly, and leaves no process', async () => {
      job = await TerminalJob.start(join(scratch, 'home'));
      await job.loadingTheCatalog();
      started = descendantsOf(job.child.pid!);
      const printedBefore = job.output.length;
      const signalled = performance.now();
      process.kill(-job.child.pid!, 'SIGINT');
      const code = await job.exited;
      const tookInMs = performance.now() - signalled;

      const after = job.output.slice(printedBefore);
      expect(code).toBe(0);
      expect(after).toContain('SIGINT: stopping…\n');
      expect(after.endsWith('\nStopped.\n')).toBe(true);
      // The services stopped while the local Azure still ran: none of them lost it while draining (an error, a
      // refused connection, a settlement or abandon that failed), nor did the catalog's progress. A service still
      // running may say what it would say anyway (a retried event), so its warnings are not all wrong.
      const lostTheLocalAzure = /^\[[^\]]+\] error:|ECONNREFUSED|cannot be reached|could not settle|abandon|✗/i;
      expect(after.split('\n').filter((line) => lostTheLocalAzure.test(line))).toEqual([]);
      // Services that lose the local Azure mid-stop wait out their Service Bus timeouts (10 s).
      expect(tookInMs).toBeLessThan(8_000);
      await waitFor(() => !started.some(alive), 3_000, () => `still running after the stop: ${started.filter(alive).join(', ')}`);
    }, 240_000);
  });

  describe('by its own abrupt end (SIGKILL), while it loads the demo catalog', () => {
    it('leaves no process behind: the local Azure and the services stop by themselves within seconds', async () => {
      job = await TerminalJob.start(join(scratch, 'home'));
      await job.loadingTheCatalog();
      started = descendantsOf(job.child.pid!);
      expect(started.length).toBeGreaterThanOrEqual(4); // the local Azure (and its engine), recommendation, vision, gateway
      job.child.kill('SIGKILL');
      await job.exited;

      await waitFor(() => !started.some(alive), 10_000, () => `still running 10 s after the launcher ended: ${started.filter(alive).join(', ')}`);
    }, 240_000);
  });
});
