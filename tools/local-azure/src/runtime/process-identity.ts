import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Whether a live process with this id exists (signal 0 checks without sending anything; EPERM means it
 * exists but belongs to another user). A zombie — killed, not yet reaped by its parent — is not alive.
 */
export function processExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = linuxStat(pid)?.[0];
  return state !== 'Z' && state !== 'X';
}

/** Fields 3… of `/proc/<pid>/stat` (state first), or undefined off Linux or when the process is gone. */
function linuxStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * A value that tells this process apart from a later process that reuses its id: the start time the
 * kernel records (Linux: `/proc/<pid>/stat` field 22, clock ticks since boot; elsewhere `ps -o lstart=`).
 * Undefined when the platform offers neither.
 */
export function processStartMark(pid: number): string | undefined {
  const ticks = linuxStat(pid)?.[22 - 3];
  if (ticks) return `linux:${ticks}`;
  try {
    const started = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2_000 }).trim();
    return started ? `ps:${started}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process `pid` still is the one whose start mark was recorded: it exists, and its start mark
 * is the same (when both are known).
 */
export function isSameProcess(pid: number, recordedMark: string | undefined): boolean {
  if (!processExists(pid)) return false;
  if (recordedMark === undefined) return true;
  const mark = processStartMark(pid);
  return mark === undefined || mark === recordedMark;
}
