import { jest } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { ProblemException } from '../http/problem-details.js';
import { CallerRateLimitGuard } from './caller-rate-limit.guard.js';

const contextFor = (principalId: string): ExecutionContext =>
  ({ switchToHttp: () => ({ getRequest: () => ({ caller: { principalId, clientId: 'c', roles: [] } }) }) }) as unknown as ExecutionContext;

describe(CallerRateLimitGuard.name, () => {
  beforeEach(() => jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  it('lets a caller use its limit, then answers 429 with Retry-After', () => {
    const guard = new CallerRateLimitGuard(3);
    for (let i = 0; i < 3; i++) expect(guard.canActivate(contextFor('a'))).toBe(true);
    try {
      guard.canActivate(contextFor('a'));
      throw new Error('expected a 429');
    } catch (error) {
      expect(error).toBeInstanceOf(ProblemException);
      expect((error as ProblemException).getStatus()).toBe(429);
      expect((error as ProblemException).extras.headers).toEqual({ 'retry-after': '20' });
    }
  });

  it('keeps callers apart: one chatty caller does not limit another', () => {
    const guard = new CallerRateLimitGuard(1);
    expect(guard.canActivate(contextFor('a'))).toBe(true);
    expect(() => guard.canActivate(contextFor('a'))).toThrow(ProblemException);
    expect(guard.canActivate(contextFor('b'))).toBe(true);
  });

  it('refills continuously', () => {
    const guard = new CallerRateLimitGuard(60);
    for (let i = 0; i < 60; i++) guard.canActivate(contextFor('a'));
    expect(() => guard.canActivate(contextFor('a'))).toThrow(ProblemException);
    jest.advanceTimersByTime(1000);
    expect(guard.canActivate(contextFor('a'))).toBe(true);
  });
});
