// The timers of a queue and its units: unref'd (a queue never keeps the process alive), and a failure in a
// callback is reported, not thrown into the event loop.

/** setTimeout's largest delay (about 24.8 days); longer waits are re-armed when the timer fires. */
export const maxTimerDelayInMs = 2 ** 31 - 1;

/** Starts an unref'd timer whose callback's errors go to `fail`. */
export function startTimer(fail: (error: unknown) => void, callback: () => void, delay: number): NodeJS.Timeout {
  const timer = setTimeout(() => {
    try {
      callback();
    } catch (error) {
      fail(error);
    }
  }, delay);
  timer.unref();
  return timer;
}
