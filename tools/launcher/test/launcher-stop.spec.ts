import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../src/processes.js';
import { alive, descendantsOf, TerminalJob } from './terminal-job.js';

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
