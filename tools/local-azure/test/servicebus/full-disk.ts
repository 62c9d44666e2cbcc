import { closeSync, constants, openSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';

/**
 * Runs `body` while this process's descriptor of `path` writes to `/dev/full` (every write fails with ENOSPC:
 * a full disk), then gives the descriptor its file back (opened read-write). For tests of a store running in
 * the test's own process (Linux: the descriptor is found through `/proc/self/fd`). POSIX hands out the lowest
 * free number, so closing the descriptor and opening another file at once puts that file behind the same number;
 * the numbers are checked, and the test fails rather than writing elsewhere if anything else took it.
 */
export async function withFullDisk(path: string, body: () => Promise<void>): Promise<void> {
  const target = realpathSync(path);
  const found = readdirSync('/proc/self/fd').filter((entry) => {
    try {
      return readlinkSync(`/proc/self/fd/${entry}`) === target;
    } catch {
      return false;
    }
  });
  if (found.length !== 1) throw new Error(`expected one open descriptor of ${target}, found ${found.length}`);
  const fd = Number(found[0]);
  closeSync(fd);
  const full = openSync('/dev/full', 'r+');
  if (full !== fd) throw new Error(`/dev/full opened as ${full}, not as the store's descriptor ${fd}`);
  let reopened: number;
  try {
    await body();
  } finally {
    closeSync(fd);
    reopened = openSync(path, constants.O_RDWR);
  }
  if (reopened !== fd) throw new Error(`${path} reopened as ${reopened}, not as the store's descriptor ${fd}`);
}
