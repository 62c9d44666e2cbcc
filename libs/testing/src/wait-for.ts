/**
 * Polls `check` until it returns a value other than undefined/false, or fails after `timeoutInMs`
 * with `what` in the message. No fixed sleeps: the poll interval only bounds the reaction time.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutInMs = 10_000, intervalInMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutInMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalInMs));
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}
