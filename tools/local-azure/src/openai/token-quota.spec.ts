import { TokenQuota } from './token-quota.js';

describe(TokenQuota.name, () => {
  let now = 0;
  const quota = (tokensPerMinute: number): TokenQuota => new TokenQuota(tokensPerMinute, () => now);
  beforeEach(() => {
    now = 1_000_000;
  });

  it('admits requests while the minute has tokens left and reports what remains', () => {
    const q = quota(600);
    expect(q.charge(200)).toEqual({ admitted: true, remainingTokens: 400 });
    expect(q.charge(400)).toEqual({ admitted: true, remainingTokens: 0 });
  });

  it('admits one request larger than the quota when the bucket is full, then refuses', () => {
    const q = quota(600);
    expect(q.charge(1000).admitted).toBe(true);
    expect(q.charge(1).admitted).toBe(false);
  });

  it('refuses with the time until the bucket is positive again, at least one second', () => {
    const q = quota(600); // 10 tokens per second
    q.charge(650); // 50 in debt
    expect(q.charge(1)).toEqual({ admitted: false, retryAfterInMs: 5100, remainingTokens: 0 });
    q.charge(600 + 1); // still refused: refused requests cost nothing
    now += 5100;
    expect(q.charge(10).admitted).toBe(true);
    const small = quota(6_000_000);
    small.charge(6_000_001);
    expect(small.charge(1)).toMatchObject({ admitted: false, retryAfterInMs: 1000 });
  });

  it('refills continuously up to one minute of tokens', () => {
    const q = quota(600);
    q.charge(600);
    now += 30_000;
    expect(q.remaining()).toBe(300);
    now += 10 * 60_000;
    expect(q.remaining()).toBe(600);
  });
});
