import { growthTrend, leastSquaresSlope, sampleProcess, type ProcessSample } from './process-sampler.js';

describe(leastSquaresSlope.name, () => {
  it('is the slope of the best line through the points', () => {
    expect(leastSquaresSlope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }])).toBeCloseTo(2);
    expect(leastSquaresSlope([{ x: 0, y: 5 }, { x: 1, y: 5 }])).toBe(0);
    expect(leastSquaresSlope([{ x: 0, y: 5 }])).toBe(0);
  });
});

describe(growthTrend.name, () => {
  const soak = (rss: (minute: number) => number, handles: (minute: number) => number = () => 40): ProcessSample[] =>
    Array.from({ length: 61 }, (_, minute) => ({ atInMinutes: minute / 2, rssInMb: rss(minute / 2), openHandles: handles(minute / 2) }));

  it('finds no growth in a flat soak with a garbage-collection sawtooth', () => {
    expect(growthTrend(soak((m) => 150 + (m % 3) * 8)).growing).toBe(false);
  });

  it('ignores the warm-up growth of the first half', () => {
    expect(growthTrend(soak((m) => (m < 15 ? 100 + m * 5 : 175))).growing).toBe(false);
  });

  it('finds a steady RSS climb over the second half', () => {
    const trend = growthTrend(soak((m) => 150 + m * 2));
    expect(trend).toMatchObject({ growing: true, rssSlopeInMbPerMinute: 2 });
  });

  it('finds leaking handles', () => {
    expect(growthTrend(soak(() => 150, (m) => 40 + Math.floor(m))).growing).toBe(true);
  });
});

describe(sampleProcess.name, () => {
  it('reads the RSS and open handles of a live process, and nothing for a gone one', () => {
    const sample = sampleProcess(process.pid, 0);
    expect(sample!.rssInMb).toBeGreaterThan(10);
    expect(sample!.openHandles).toBeGreaterThan(2);
    expect(sampleProcess(2 ** 22 + 1, 0)).toBeUndefined();
  });
});
