import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { ProblemException } from '../http/problem-details.js';
import type { AuthenticatedRequest } from './caller-auth.guard.js';

/** Injection token of the per-caller limit (requests per minute). */
export const CALLER_RATE_LIMIT = Symbol('CALLER_RATE_LIMIT');

/**
 * A token bucket per caller (service principal): `limit` requests per minute, refilled continuously, so
 * one chatty caller cannot starve the others. Past the limit: 429 with `Retry-After`.
 */
@Injectable()
export class CallerRateLimitGuard implements CanActivate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(@Inject(CALLER_RATE_LIMIT) private readonly limitPerMinute: number) {}

  canActivate(context: ExecutionContext): boolean {
    const caller = context.switchToHttp().getRequest<AuthenticatedRequest>().caller;
    if (!caller) return true; // public routes
    const now = Date.now();
    const ratePerMs = this.limitPerMinute / 60_000;
    const bucket = this.buckets.get(caller.principalId) ?? { tokens: this.limitPerMinute, at: now };
    bucket.tokens = Math.min(this.limitPerMinute, bucket.tokens + (now - bucket.at) * ratePerMs);
    bucket.at = now;
    this.buckets.set(caller.principalId, bucket);
    if (bucket.tokens < 1) {
      const retryAfter = Math.ceil((1 - bucket.tokens) / ratePerMs / 1000);
      throw new ProblemException(429, 'rate-limited', `Too many requests from this caller; the limit is ${this.limitPerMinute} per minute.`, {
        headers: { 'retry-after': String(retryAfter) },
      });
    }
    bucket.tokens -= 1;
    return true;
  }
}
