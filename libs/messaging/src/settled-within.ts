/**
 * Whether `work` settled (resolved or rejected) within `ms`. Work that did not is left running: what a shutdown
 * waits for this way (a settlement, a link's close) ends with the process.
 */
export function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, ms));
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(done, done);
  });
}
