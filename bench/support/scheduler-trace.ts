// When each process of a request's path gets a CPU, from the Linux scheduler's own record (`perf sched`).
//
// A CPU profile says what a process does while it runs; at concurrency 1 on two cores a request also waits: for a
// CPU to wake from idle, or behind another process on the CPU it was woken on. `perf sched record` logs every
// wake-up and context switch; `perf sched timehist -w` turns them into one line per event. From those this module
// follows one request from process to process — who woke whom, how long the woken process waited for a CPU
// ("scheduling delay"), how long it then took until it woke the next one ("run") — and sums, per process, what its
// main thread waited and why. Needs `perf` (linux-perf) and the right to trace the scheduler (root, or
// kernel.perf_event_paranoid ≤ -1).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A wake-up (`waker` made `wakee` runnable) or a stretch of `task` running on `cpu`, times in ms. */
export type SchedulerEvent =
  | { kind: 'wake'; at: number; cpu: number; waker: Task; wakee: Task }
  | { kind: 'run'; from: number; to: number; cpu: number; task: Task; delay: number };

/** A thread: its id, its process's id, and its name (`MainThread`, `V8Worker`, `libuv-worker`, `<idle>`, …). */
export interface Task {
  tid: number;
  pid: number;
  name: string;
}

/**
 * Records the scheduler on every CPU for `seconds` and returns `perf sched timehist -w`'s text. Throws with what to
 * install or allow when perf cannot trace.
 */
export async function recordSchedulerTrace(seconds: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sched-trace-'));
  const data = join(dir, 'perf.data');
  try {
    await run('perf', ['sched', 'record', '-o', data, '--', 'sleep', String(seconds)], { maxBuffer: 16 * 1024 * 1024 });
    const { stdout } = await run('perf', ['sched', 'timehist', '-i', data, '-w'], { maxBuffer: 512 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const missing = (error as { code?: string }).code === 'ENOENT';
    const said = (error as { stderr?: string }).stderr?.trim().split('\n')[0] || (error as Error).message.split('\n')[0];
    const what = missing ? 'perf is not installed (Debian: apt install linux-perf)' : `perf says "${said}" — run as root, or with kernel.perf_event_paranoid set to -1`;
    throw new Error(`cannot trace the scheduler: ${what}`, { cause: error });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Parses `perf sched timehist -w` lines: `time [cpu] task[tid/pid] wait delay run` or `… awakened: task[tid/pid]`. */
export function parseTimehist(text: string): SchedulerEvent[] {
  const events: SchedulerEvent[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(\S.*?)\s{2,}(.*)$/.exec(line);
    if (!match) continue;
    const at = Number(match[1]) * 1000;
    const cpu = Number(match[2]);
    const task = parseTask(match[3]!);
    const rest = match[4]!.trim();
    if (rest.startsWith('awakened:')) {
      events.push({ kind: 'wake', at, cpu, waker: task, wakee: parseTask(rest.slice('awakened:'.length).trim()) });
      continue;
    }
    const [, delay, ran] = rest.split(/\s+/).map(Number) as [number, number, number];
    events.push({ kind: 'run', from: at - ran, to: at, cpu, task, delay });
  }
  return events;
}

function parseTask(text: string): Task {
  const match = /^(.*)\[(\d+)(?:\/(\d+))?\]$/.exec(text.trim());
  if (!match) return { tid: -1, pid: -1, name: text.trim() };
  const tid = Number(match[2]);
  return { tid, pid: match[3] ? Number(match[3]) : tid, name: match[1]! };
}

/** One step of a request's path: `from`'s main thread wakes `to`'s (names as given to {@link criticalPath}). */
export interface PathStep {
  from: string;
  to: string;
  label: string;
}

/** Per step: how long the woken process waited for a CPU, and how long it then ran until it woke the next one. */
export interface PathRow {
  label: string;
  delayP50: number;
  delayMean: number;
  runP50: number;
  runMean: number;
}

/**
 * Follows requests through `steps` (a cycle: the last step's wakee is the first step's waker) and returns each step's
 * scheduling delay and run, p50 and mean over the requests found whole, in ms. A step is the first wake-up of that
 * pair after the previous step (within `gapInMs`); requests where one is missing are skipped.
 */
export function criticalPath(events: readonly SchedulerEvent[], pids: ReadonlyMap<string, number>, steps: readonly PathStep[], gapInMs = 6): { requests: number; rows: PathRow[] } {
  const wakes = events.filter((e): e is Extract<SchedulerEvent, { kind: 'wake' }> => e.kind === 'wake' && isMain(e.waker) && isMain(e.wakee));
  const runsOf = new Map<number, Extract<SchedulerEvent, { kind: 'run' }>[]>();
  for (const event of events) {
    if (event.kind !== 'run' || !isMain(event.task)) continue;
    const list = runsOf.get(event.task.pid);
    if (list) list.push(event);
    else runsOf.set(event.task.pid, [event]);
  }
  const pidOf = (name: string): number => {
    const pid = pids.get(name);
    if (pid === undefined) throw new Error(`no process named ${name}`);
    return pid;
  };
  const pairs = steps.map((step) => [pidOf(step.from), pidOf(step.to)] as const);
  const found: { delay: number; ran: number }[][] = [];
  for (let i = 0; i < wakes.length; i++) {
    if (wakes[i]!.waker.pid !== pairs[0]![0] || wakes[i]!.wakee.pid !== pairs[0]![1]) continue;
    const path = [wakes[i]!];
    let j = i + 1;
    for (let k = 1; k <= pairs.length && path.length === k; k++) {
      const [from, to] = pairs[k % pairs.length]!;
      const previous = path[k - 1]!.at;
      while (j < wakes.length && wakes[j]!.at - previous < gapInMs && !(wakes[j]!.waker.pid === from && wakes[j]!.wakee.pid === to)) j++;
      if (j < wakes.length && wakes[j]!.at - previous < gapInMs) path.push(wakes[j++]!);
    }
    if (path.length !== pairs.length + 1) continue;
    found.push(
      path.slice(0, -1).map((wake, k) => {
        const next = path[k + 1]!.at;
        const started = firstEndingAfter(runsOf.get(wake.wakee.pid) ?? [], wake.at, (r) => r.from >= wake.at - 0.0005)?.from ?? next;
        const start = Math.min(started, next);
        return { delay: start - wake.at, ran: next - start };
      }),
    );
    i = j - 2; // the last step's wake-up starts the next request
  }
  return {
    requests: found.length,
    rows: steps.map((step, k) => {
      const delays = found.map((request) => request[k]!.delay);
      const runs = found.map((request) => request[k]!.ran);
      return { label: step.label, delayP50: median(delays), delayMean: mean(delays), runP50: median(runs), runMean: mean(runs) };
    }),
  };
}

/** What each process's main thread waited for a CPU in all, in ms: for its CPU to wake, or behind whom. */
export interface WaitRow {
  name: string;
  wakeUps: number;
  /** Time from wake-up to running, in all. */
  delay: number;
  /** Of that, time its CPU was idle (waking from halt). */
  cpuWaking: number;
  /** Of that, time another process ran on its CPU, by the other's name (threads other than main as `name:thread`). */
  behind: Record<string, number>;
  /** Of the time spent behind others, how much the other CPU was idle meanwhile. */
  otherCpuIdle: number;
}

/** Sums, per named process, its main thread's scheduling delays (see {@link WaitRow}). */
export function waitsByProcess(events: readonly SchedulerEvent[], pids: ReadonlyMap<string, number>): WaitRow[] {
  const names = new Map([...pids].map(([name, pid]) => [pid, name] as const));
  const runs = events.filter((e): e is Extract<SchedulerEvent, { kind: 'run' }> => e.kind === 'run');
  const byCpu = new Map<number, typeof runs>();
  for (const r of runs) {
    const list = byCpu.get(r.cpu);
    if (list) list.push(r);
    else byCpu.set(r.cpu, [r]);
  }
  // A CPU's runs do not overlap and come in the order they ended: the ones overlapping a window follow the first
  // that ends after its start.
  const overlap = (cpu: number, from: number, to: number, count: (r: (typeof runs)[number], ms: number) => void): void => {
    const list = byCpu.get(cpu) ?? [];
    for (let i = firstIndexEndingAfter(list, from); i < list.length && list[i]!.from < to; i++) {
      const ms = Math.min(list[i]!.to, to) - Math.max(list[i]!.from, from);
      if (ms > 0) count(list[i]!, ms);
    }
  };
  const rows = new Map<string, WaitRow>();
  for (const r of runs) {
    const name = names.get(r.task.pid);
    if (!name || !isMain(r.task) || r.delay <= 0) continue;
    const row = rows.get(name) ?? { name, wakeUps: 0, delay: 0, cpuWaking: 0, behind: {}, otherCpuIdle: 0 };
    rows.set(name, row);
    const woke = r.from - r.delay;
    row.wakeUps++;
    row.delay += r.delay;
    let behind = 0;
    overlap(r.cpu, woke, r.from, (other, ms) => {
      if (other.task.name === '<idle>') row.cpuWaking += ms;
      else {
        const owner = names.get(other.task.pid) ?? 'other';
        const key = isMain(other.task) || owner === 'other' ? owner : `${owner}:${other.task.name}`;
        row.behind[key] = (row.behind[key] ?? 0) + ms;
        behind += ms;
      }
    });
    let idleElsewhere = 0;
    for (const cpu of byCpu.keys()) if (cpu !== r.cpu) overlap(cpu, woke, r.from, (other, ms) => (idleElsewhere += other.task.name === '<idle>' ? ms : 0));
    row.otherCpuIdle += Math.min(behind, idleElsewhere);
  }
  return [...rows.values()].sort((a, b) => b.delay - a.delay);
}

/** Index of the first run (in the order they ended) that ends after `at`. */
function firstIndexEndingAfter(runs: readonly { to: number }[], at: number): number {
  let low = 0;
  let high = runs.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (runs[middle]!.to <= at) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The first run ending after `at` that passes `accept` (runs in the order they ended). */
function firstEndingAfter<R extends { to: number }>(runs: readonly R[], at: number, accept: (run: R) => boolean): R | undefined {
  for (let i = firstIndexEndingAfter(runs, at); i < runs.length; i++) if (accept(runs[i]!)) return runs[i];
  return undefined;
}

/** Node names a process's main thread `MainThread` (the PostgreSQL engine's child too); its pid is its tid. */
function isMain(task: Task): boolean {
  return task.tid === task.pid;
}

function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}
