// Preloaded (`node --import`) into every process the launcher starts (see startProcess in processes.ts): a process
// that outlives its launcher stops itself.
//
// The launcher starts its processes in process groups of their own, so that a terminal's Ctrl-C reaches the launcher
// only and it stops them in order (services first, then the local Azure they drain against). The other side of that:
// a launcher that dies abruptly (SIGKILL, a crash, the terminal closed) no longer takes them with it. Their stdin is a
// pipe whose only writer is the launcher, so its end of file says the launcher is gone — whatever the cause, and
// across the local Azure's re-execution of itself (`process.execve` keeps file descriptors; an IPC channel would not
// survive it). The process is then stopped as the launcher would have stopped it (SIGTERM: its own clean stop),
// and ended if that takes longer than `stopBoundInMs`.
//
// This file is started by Node directly: it imports Node's own modules only and uses erasable TypeScript only, so it
// runs from src/ (tests, type stripping) and from dist/ alike.

/** How long a process whose launcher is gone may take over its own clean stop before it is ended, in ms. */
const stopBoundInMs = 5_000;

import { isMainThread } from 'node:worker_threads';

const stdin = process.stdin;
let gone = false;
const launcherGone = (): void => {
  if (gone) return;
  gone = true;
  // Nobody reads the output any more: a write to it fails (EPIPE), which must not turn the clean stop into a crash.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  setTimeout(() => process.exit(1), stopBoundInMs).unref();
  process.kill(process.pid, 'SIGTERM');
};
// Node runs `--import` in every worker thread too, where process.stdin is the thread's own stream, empty and ended at
// once: watched there, it stopped the whole process when the local Azure started its first Vision decoding thread.
if (isMainThread) {
  // A read error (the pipe torn down) means the same; the data itself is never used (the launcher writes none).
  stdin.on('end', launcherGone).on('error', launcherGone);
  stdin.resume();
  // Watching the pipe must not keep a process alive that would otherwise have finished.
  (stdin as NodeJS.ReadStream & { unref?: () => void }).unref?.();
}
