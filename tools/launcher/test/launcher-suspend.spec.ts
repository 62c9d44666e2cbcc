import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemInstancesFileName, type SystemInstancesFile } from '@keyless/contracts';
import { localAzureStatus } from '../src/local-azure-status.js';
import { waitFor } from '../src/processes.js';
import { alive, descendantsOf, processState, TerminalJob } from './terminal-job.js';

/** Every process of the list in the given state (`T` suspended), or, for `running`, none of them suspended. */
function allAre(pids: readonly number[], state: 'suspended' | 'running'): boolean {
  return pids.every((pid) => (processState(pid) === 'T') === (state === 'suspended'));
}

const states = (pids: readonly number[]): string => pids.map((pid) => `${pid} ${processState(pid) ?? 'gone'}`).join(', ');

/** Whether every service instance the launcher lists, and the local Azure, serves. */
async function serving(home: string): Promise<boolean> {
  const { instances } = JSON.parse(readFileSync(join(home, systemInstancesFileName), 'utf8')) as SystemInstancesFile;
  const ready = await Promise.all(instances.map(async ({ url }) => (await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined))?.status === 200));
  return ready.every(Boolean) && (await localAzureStatus(home)).state === 'running';
}

describe('npm start, when suspended by Ctrl-Z in its terminal (SIGTSTP to the whole process group)', () => {
  let scratch: string;
  let home: string;
  let job: TerminalJob | undefined;
  let started: number[] = [];
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'launcher-suspend-'));
    home = join(scratch, 'home');
  });
  afterEach(() => {
    // Whatever a failed run left behind is ended here (SIGKILL ends a suspended process too).
    for (const pid of [job?.child.pid ?? 0, ...started]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    job = undefined;
    started = [];
    rmSync(scratch, { recursive: true, force: true });
  });

  /** `npm start` (without the demo catalog), running, with every process it started in `started`. */
  async function running(): Promise<TerminalJob> {
    job = await TerminalJob.start(home, { KEYLESS_DEMO_CATALOG: 'false' });
    await job.printed('Keyless is running.');
    started = descendantsOf(job.child.pid!);
    expect(started.length).toBeGreaterThanOrEqual(4); // the local Azure (and its engine), recommendation, vision, gateway
    return job;
  }

  /** Ctrl-Z, once every process is suspended: the launcher and each process it started (state `T`). */
  async function suspended(job: TerminalJob): Promise<void> {
    job.signal('SIGTSTP');
    const all = [job.child.pid!, ...started];
    await waitFor(() => allAre(all, 'suspended'), 10_000, () => `not suspended 10 s after Ctrl-Z: ${states(all)}`);
  }

  it('suspends every process it started and itself, and `fg` (SIGCONT) continues them all, serving again', async () => {
    const job = await running();
    await suspended(job);

    job.signal('SIGCONT');
    await waitFor(() => allAre([job.child.pid!, ...started], 'running'), 10_000, () => `still suspended 10 s after fg: ${states([job.child.pid!, ...started])}`);
    await waitFor(() => serving(home), 30_000, () => `the system does not serve 30 s after fg:\n${job.output}`, 250);
    // Still the same processes: none of them was restarted (nor did the launcher report one as exited).
    expect(started.every(alive)).toBe(true);
    expect(job.output).not.toMatch(/ exited \(|starting it again/);

    // And Ctrl-C still stops it all, as before the suspension.
    job.signal('SIGINT');
    expect(await job.exited).toBe(0);
    await waitFor(() => !started.some(alive), 5_000, () => `still running after the stop: ${states(started)}`);
  }, 240_000);

  it('stops everything when ended while suspended the way a shell does it (`kill %1`: SIGTERM, then SIGCONT)', async () => {
    const job = await running();
    await suspended(job);
    job.signal('SIGTERM');
    job.signal('SIGCONT');
    expect(await job.exited).toBe(0);
    expect(job.output).toContain('SIGTERM: stopping…\n');
    await waitFor(() => !started.some(alive), 5_000, () => `still running after the stop: ${states(started)}`);
  }, 240_000);

  it('leaves nothing suspended when it is killed while suspended (kill -9): its processes stop by themselves', async () => {
    const job = await running();
    await suspended(job);
    job.child.kill('SIGKILL');
    await job.exited;
    // The keeper continues them, each notices its launcher is gone and takes at most 5 s over its own clean stop.
    await waitFor(() => !started.some(alive), 15_000, () => `still there 15 s after the launcher ended: ${states(started)}`);
  }, 240_000);
});
