import { refreshTime, retryTime, sdkRenewalOffsetInMs } from './refresh-schedule.js';

const minute = 60_000;
const hour = 60 * minute;
const t0 = Date.UTC(2026, 0, 1);

describe(refreshTime.name, () => {
  describe('when the SDK names a refresh time (MSAL refreshOn: tokens over 2 h)', () => {
    it('refreshes at that time', () => {
      expect(refreshTime({ acquiredAt: t0, expiresOn: t0 + 24 * hour, refreshAfter: t0 + 12 * hour }, t0)).toBe(t0 + 12 * hour);
    });
  });

  describe('when the lifetime is over 5 minutes and there is no refresh time (MSAL caches until 5 min before expiry)', () => {
    it('refreshes just after MSAL stops serving its cached copy', () => {
      expect(refreshTime({ acquiredAt: t0, expiresOn: t0 + hour }, t0)).toBe(t0 + hour - sdkRenewalOffsetInMs + 2_000);
    });
  });

  describe('when the lifetime is 5 minutes or less (MSAL does not cache it)', () => {
    it('refreshes at half the lifetime', () => {
      expect(refreshTime({ acquiredAt: t0, expiresOn: t0 + minute }, t0)).toBe(t0 + 30_000);
    });
  });

  describe('when the computed time is already past', () => {
    it('refreshes no earlier than the minimum delay from now', () => {
      expect(refreshTime({ acquiredAt: t0, expiresOn: t0 + minute }, t0 + 50_000)).toBe(t0 + 51_000);
    });
  });
});

describe(retryTime.name, () => {
  const options = { baseDelayInMs: 5_000, maxDelayInMs: 60_000 };

  describe('when refreshes keep failing', () => {
    it('doubles the delay per failure up to the maximum', () => {
      expect([1, 2, 3, 4, 5, 6].map((failures) => retryTime(failures, t0, options) - t0)).toEqual([5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    });
  });

  describe('when the held token stops being servable before the next retry', () => {
    it('retries one base delay before that moment', () => {
      expect(retryTime(5, t0, { ...options, servableUntil: t0 + 30_000 })).toBe(t0 + 25_000);
    });
  });

  describe('when the held token is about to stop being servable', () => {
    it('keeps the normal delay', () => {
      expect(retryTime(1, t0, { ...options, servableUntil: t0 + 3_000 })).toBe(t0 + 5_000);
    });
  });
});
