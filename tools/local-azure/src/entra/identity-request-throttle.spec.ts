import { IdentityRequestThrottle, type ThrottleDecision } from './identity-request-throttle.js';

describe(IdentityRequestThrottle.name, () => {
  let now: number;
  const throttle = (requestsPerWindow: number, maxConcurrentRequests = 100) =>
    new IdentityRequestThrottle({ requestsPerWindow, windowInMs: 1000, maxConcurrentRequests }, () => now);
  const served = (decision: ThrottleDecision) => {
    if (decision.admitted) decision.release();
    return decision.admitted;
  };
  beforeEach(() => {
    now = 10_000;
  });

  describe('when a host makes more requests than the window allows', () => {
    it('refuses the one past the limit, naming the rate', () => {
      const limit = throttle(3);
      expect([1, 2, 3, 4].map(() => served(limit.admit('gateway')))).toEqual([true, true, true, false]);
      expect(limit.admit('gateway')).toEqual({ admitted: false, limit: 'rate', detail: '3 requests in the last 1000 ms' });
    });

    it('slides the window: no burst of twice the limit across a window boundary', () => {
      const limit = throttle(2);
      served(limit.admit('gateway'));
      now += 900;
      served(limit.admit('gateway'));
      now += 200; // the first left the window, the second has not
      expect(served(limit.admit('gateway'))).toBe(true);
      expect(served(limit.admit('gateway'))).toBe(false);
    });

    it('charges nothing for a refusal: a host admitted again once its oldest request leaves the window', () => {
      const limit = throttle(1);
      served(limit.admit('gateway'));
      for (let i = 0; i < 10; i++) {
        now += 50;
        expect(served(limit.admit('gateway'))).toBe(false);
      }
      now = 10_000 + 1000;
      expect(served(limit.admit('gateway'))).toBe(true);
    });
  });

  describe('when a host has too many requests in progress', () => {
    it('refuses one more until one is released, naming the concurrency', () => {
      const limit = throttle(100, 2);
      const first = limit.admit('gateway');
      limit.admit('gateway');
      expect(limit.admit('gateway')).toEqual({ admitted: false, limit: 'concurrency', detail: '2 requests in progress' });
      if (first.admitted) {
        first.release();
        first.release(); // a second release is no second slot
      }
      expect(limit.admit('gateway').admitted).toBe(true);
      expect(limit.admit('gateway').admitted).toBe(false);
    });
  });

  it('keeps hosts apart', () => {
    const limit = throttle(1);
    served(limit.admit('gateway'));
    expect(served(limit.admit('gateway'))).toBe(false);
    expect(served(limit.admit('vision'))).toBe(true);
  });
});
