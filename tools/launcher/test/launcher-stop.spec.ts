import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../src/processes.js';
import { alive, descendantsOf, TerminalJob } from './terminal-job.js';

/** A process's command line (Linux), its arguments joined by spaces; empty once it is gone. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
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

  /**
   * Ctrl-C in the job's terminal (SIGINT to its whole process group): checks that it said it stops, exited with 0 and
   * printed "Stopped." last; returns what it printed from the signal on, and how long it took to exit.
   */
  async function stopByCtrlC(running: TerminalJob): Promise<{ after: string; tookInMs: number }> {
    const printedBefore = running.output.length;
    const signalled = performance.now();
    running.signal('SIGINT');
    const code = await running.exited;
    const tookInMs = performance.now() - signalled;
    const after = running.output.slice(printedBefore);
    expect(code).toBe(0);
    expect(after).toContain('SIGINT: stopping…\n');
    expect(after.endsWith('\nStopped.\n')).toBe(true);
    return { after, tookInMs };
  }

  describe("by Ctrl-C in its terminal (SIGINT to the whole process group) while it loads the demo catalog", () => {
    it('stops the services, then the local Azure, quietly and quickly, and leaves no process', async () => {
      job = await TerminalJob.start(join(scratch, 'home'));
      await job.loadingTheCatalog();
      started = descendantsOf(job.child.pid!);
      const { after, tookInMs } = await stopByCtrlC(job);
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

  describe('by Ctrl-C while the catalog load waits to try again (its gateway gone)', () => {
    it('ends the load at once: nothing is printed after "Stopped.", and the stop is as quick', async () => {
      job = await TerminalJob.start(join(scratch, 'home'));
      await job.loadingTheCatalog();
      started = descendantsOf(job.child.pid!);
      // Nothing restarts a process before the system is up: the load's calls are refused until it gives up (minutes).
      const gateway = started.find((pid) => commandLine(pid).includes(join('apps', 'gateway', 'dist', 'main.js')));
      expect(gateway).toBeDefined();
      process.kill(gateway!, 'SIGKILL');
      await job.printed('trying again in');
      const { after, tookInMs } = await stopByCtrlC(job);
      expect(after.split('\n').filter((line) => /trying again|The gateway|✗/.test(line))).toEqual([]);
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
