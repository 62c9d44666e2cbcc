// How the local Azure's process is set up so that what a burst of messages took does not stay held afterwards.
//
// V8 sizes the young generation from the machine's memory (semi-spaces up to 64 MB on a 24 GB machine), so under a
// burst it collects the wrappers of transient buffers (socket reads, TLS records, frames, message bytes) only every
// few tens of MB, and their native memory piles up meanwhile: ~300 MB RSS right after the Service Bus bench against
// ~120–200 MB with 4 MB semi-spaces. So the process runs with `--max-semi-space-size=4`. V8 reads its heap flags
// only when a process starts: `start` re-executes itself in place (same pid, `process.execve`) with the flag, before
// anything else is loaded (~50 ms of start-up).
//
// Earlier versions also fixed glibc's mmap threshold at 128 KiB and made Node's buffer pools 128 KiB,
// each pool a mapping of its own, unmapped once its last Buffer was collected: memory went back to the system as
// soon as it was free. But a page mapped afresh costs a page fault when first written, and on virtual machines like
// the project's CI (nested virtualisation, kernel page-table isolation) a fault costs ~12.5 µs — 0.4 ms to map,
// touch and unmap 128 KiB. A 100-message batch took ~34 faults, which held batched sends at ~0.65 × the SDK's
// ceiling. Without them glibc reuses the memory it keeps (~4–12 faults a batch, ~0.83 ×) and the process holds
// ~25–35 MB more after a burst (idle RSS 20 s later ~110–135 MB instead of ~100). docs/benchmarks.md, "Session 13".

/** The young generation's semi-space size in MB (V8's default grows to 64 on a 24 GB machine). */
export const semiSpaceMegabytes = 4;

const semiSpaceFlag = `--max-semi-space-size=${semiSpaceMegabytes}`;

/**
 * The Node options the process has to run with for the tuning, or undefined when it already does. A semi-space size
 * the starter chose (in the Node options or NODE_OPTIONS) is respected as given.
 */
export function tunedExecArgv(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string[] | undefined {
  const chosen = [...execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/)].some((option) => /^--max[-_]semi[-_]space[-_]size\b/.test(option));
  return chosen ? undefined : [...execArgv, semiSpaceFlag];
}

/**
 * Called first by `start`: re-executes the process with {@link tunedExecArgv} when it needs it (does not return
 * then). Where `process.execve` is missing (Windows) or fails, the local Azure runs as before, holding more memory
 * after bursts.
 */
export function tuneMemory(): void {
  const execArgv = tunedExecArgv(process.env, process.execArgv);
  if (!execArgv || typeof process.execve !== 'function') return;
  try {
    process.execve(process.execPath, [process.execPath, ...execArgv, ...process.argv.slice(1)], process.env);
  } catch {
    // Runs untuned.
  }
}
