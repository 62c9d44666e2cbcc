// How the local Azure's process is set up so that the memory a burst of messages took goes back to the system.
//
// After a burst, glibc's main heap (`[heap]` in /proc/<pid>/smaps) stayed at its high-water mark: 53 MB of it, of
// which ~8 MB live, 20 s after the Service Bus bench. Node's buffer pool takes 8 KiB chunks from that heap for every
// small Buffer (message bytes as queued, deliveries, frames); chunks that live as long as a queued message sit among
// chunks freed a moment later, and glibc gives back only the top of the heap (Node has no malloc_trim). The
// transient buffers of socket reads and TLS records (8–64 KiB) pile up there too until V8 collects their wrappers:
// V8 sizes the young generation from the machine's memory (up to 128 MB on a 24 GB machine), so that happens only
// every few tens of MB.
//
// So the process runs with:
// - glibc's mmap threshold fixed at 128 KiB (its default starting value, which glibc otherwise raises to the size
//   of any mapped block freed — after which such blocks come from the heap again);
// - Node's buffer pools of 128 KiB: each pool is a mapping of its own, unmapped when its last Buffer is collected;
// - a young generation of 4 MB semi-spaces (`--max-semi-space-size`), so V8 collects the transient buffers' wrappers
//   — and frees the buffers — before many of them pile up in the heap.
// glibc reads its tunables, and V8 its heap flags, only when a process starts: `start` re-executes itself in place
// (same pid, `process.execve`) with them, before anything else is loaded (~50 ms of start-up).

import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';

/** Node's buffer pool size, and glibc's mmap threshold, with the tuning on. */
export const bufferPoolBytes = 128 * 1024;

/** The young generation's semi-space size in MB (V8's default grows to 64 on a 24 GB machine). */
export const semiSpaceMegabytes = 4;

const tunable = `glibc.malloc.mmap_threshold=${bufferPoolBytes}`;
const semiSpaceFlag = `--max-semi-space-size=${semiSpaceMegabytes}`;

/** How the process should be started for the tuning. */
export interface TunedStart {
  env: NodeJS.ProcessEnv;
  execArgv: string[];
}

/**
 * The environment and Node options the process has to run with for the tuning, or undefined when it already does.
 * Whatever the starter chose is respected as given: an mmap threshold (GLIBC_TUNABLES or MALLOC_MMAP_THRESHOLD_), a
 * semi-space size (in the Node options or NODE_OPTIONS); other tunables in GLIBC_TUNABLES are kept. The threshold is
 * only added on glibc.
 */
export function tunedStart(env: NodeJS.ProcessEnv, execArgv: readonly string[], glibc: boolean): TunedStart | undefined {
  const addTunable = glibc && !mmapThresholdChosen(env);
  const addFlag = ![...execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/)].some((option) => /^--max[-_]semi[-_]space[-_]size\b/.test(option));
  if (!addTunable && !addFlag) return undefined;
  const tunables = env['GLIBC_TUNABLES'];
  return {
    env: addTunable ? { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:${tunable}` : tunable } : env,
    execArgv: addFlag ? [...execArgv, semiSpaceFlag] : [...execArgv],
  };
}

/** Whether the environment fixes glibc's mmap threshold (ours or the user's). */
export function mmapThresholdChosen(env: NodeJS.ProcessEnv): boolean {
  return env['MALLOC_MMAP_THRESHOLD_'] !== undefined || /(^|:)glibc\.malloc\.mmap_threshold=/.test(env['GLIBC_TUNABLES'] ?? '');
}

/**
 * Called first by `start`: re-executes the process with {@link tunedStart} when it needs it (does not return then),
 * and makes Node's buffer pools {@link bufferPoolBytes} once it runs with our mmap threshold. Where `process.execve`
 * is missing (Windows) or fails, the local Azure runs as before, holding more memory after bursts.
 */
export function tuneMemory(): void {
  const glibc = process.platform === 'linux' && linkedToGlibc();
  const start = tunedStart(process.env, process.execArgv, glibc);
  if (start && typeof process.execve === 'function') {
    try {
      process.execve(process.execPath, [process.execPath, ...start.execArgv, ...process.argv.slice(1)], start.env);
    } catch {
      // Runs untuned.
    }
  }
  // A threshold the user chose is left alone, and so is the pool size (pools below it would come from the heap).
  if (glibc && (process.env['GLIBC_TUNABLES'] ?? '').split(':').includes(tunable)) Buffer.poolSize = bufferPoolBytes;
}

/** Whether this process runs on glibc (its libc.so.6 is mapped; musl's is ld-musl-*). */
function linkedToGlibc(): boolean {
  try {
    return /\/libc\.so\.6$/m.test(readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return false;
  }
}
