/** The outcome of charging a request against a deployment's quota. */
export type QuotaDecision =
  | { admitted: true; remainingTokens: number }
  | { admitted: false; retryAfterInMs: number; remainingTokens: 0 };

/**
 * A deployment's tokens-per-minute quota as a token bucket: it holds at most one minute of tokens and
 * refills continuously at `tokensPerMinute / 60` per second.
 *
 * Rules:
 * - A request is admitted while the bucket is not empty, and its whole cost is taken, even when that
 *   drives the bucket below zero (so one request larger than the quota still runs once, as on Azure).
 * - While the bucket is empty or in debt, requests are refused with the time until it is positive again
 *   (at least one second, Azure's `retry-after` granularity).
 * - A refused request costs nothing.
 */
export class TokenQuota {
  private available: number;
  private updatedAt: number;

  constructor(
    readonly tokensPerMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.available = tokensPerMinute;
    this.updatedAt = now();
  }

  /** Charges `tokens` if the bucket is not empty. */
  charge(tokens: number): QuotaDecision {
    this.refill();
    if (this.available <= 0) {
      const deficit = -this.available + 1;
      const retryAfterInMs = Math.max(1000, Math.ceil((deficit / this.tokensPerMinute) * 60_000));
      return { admitted: false, retryAfterInMs, remainingTokens: 0 };
    }
    this.available -= tokens;
    return { admitted: true, remainingTokens: Math.max(0, Math.floor(this.available)) };
  }

  /**
   * Takes `tokens` whatever the bucket holds (the rest of a request already admitted, e.g. the completion of a
   * model server); returns the tokens left.
   */
  debit(tokens: number): number {
    this.refill();
    this.available -= tokens;
    return Math.max(0, Math.floor(this.available));
  }

  /** Tokens left in the current minute (0 while in debt). */
  remaining(): number {
    this.refill();
    return Math.max(0, Math.floor(this.available));
  }

  private refill(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.updatedAt);
    this.updatedAt = now;
    this.available = Math.min(this.tokensPerMinute, this.available + (elapsed / 60_000) * this.tokensPerMinute);
  }
}
