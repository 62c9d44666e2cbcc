import { countByStatus, requestKinds, requestRecoveryInMs, type RequestKind } from './load.js';

describe(requestRecoveryInMs.name, () => {
  const healedAt = 1_000;
  /** One record per (at, status), cycling through the kinds as the load does. */
  const records = (statuses: (number | 'network-error')[], startAt = healedAt) =>
    statuses.map((status, i) => ({ at: startAt + i * 100, kind: requestKinds[i % requestKinds.length] as RequestKind, status }));

  it('is the time to the first request of a run of successes of every kind', () => {
    expect(requestRecoveryInMs(records([503, 503, 200, 200, 200, 200, 200, 200, 200, 200]), healedAt, 8)).toBe(200);
  });

  it('restarts the run after any failure', () => {
    expect(requestRecoveryInMs(records([200, 200, 200, 504, 200, 200, 200, 200, 200, 200, 200, 200]), healedAt, 8)).toBe(400);
  });

  it('is undefined while no long enough run has every kind', () => {
    expect(requestRecoveryInMs(records([200, 200, 200, 200, 200, 'network-error']), healedAt, 8)).toBeUndefined();
    const onlyOneKind = Array.from({ length: 20 }, (_, i) => ({ at: healedAt + i, kind: 'get-product' as RequestKind, status: 200 }));
    expect(requestRecoveryInMs(onlyOneKind, healedAt, 8)).toBeUndefined();
  });

  it('ignores requests sent before the heal', () => {
    expect(requestRecoveryInMs([...records([200, 200, 200, 200], 0), ...records([503, 200, 200, 200, 200])], healedAt, 4)).toBe(100);
  });
});

describe(countByStatus.name, () => {
  it('counts by status, network errors included', () => {
    expect(countByStatus([{ status: 200 }, { status: 200 }, { status: 'network-error' }])).toEqual({ '200': 2, 'network-error': 1 });
  });
});
