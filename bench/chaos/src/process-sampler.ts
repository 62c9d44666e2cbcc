import { readdirSync, readFileSync } from 'node:fs';

/** One reading of a process. */
export interface ProcessSample {
  /** Minutes since the soak started. */
  atInMinutes: number;
  rssInMb: number;
  /** Open file descriptors: sockets, files, pipes, timers' event fds — the process's open handles as the OS sees them. */
  openHandles: number;
}

/** Reads a process's resident set size and open handle count from /proc (Linux); undefined once it is gone. */
export function sampleProcess(pid: number, atInMinutes: number): ProcessSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssInKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    const openHandles = readdirSync(`/proc/${pid}/fd`).length;
    return { atInMinutes, rssInMb: Math.round((rssInKb / 1024) * 10) / 10, openHandles };
  } catch {
    return undefined;
  }
}

/** A least-squares line through (x, y) points: the slope, per unit of x. */
export function leastSquaresSlope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((s, p) => s + p.x, 0) / n;
  const meanY = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - meanX) ** 2, 0);
  if (sxx === 0) return 0;
  return points.reduce((s, p) => s + (p.x - meanX) * (p.y - meanY), 0) / sxx;
}

/** The growth check of one process over a soak. */
export interface GrowthTrend {
  samples: number;
  /** RSS slope over the second half of the soak, MB per minute. */
  rssSlopeInMbPerMinute: number;
  /** What that slope adds over the second half, MB. */
  rssGrowthInMb: number;
  /** Open-handle slope over the second half, per minute. */
  handleSlopePerMinute: number;
  handleGrowth: number;
  /** Whether either grows beyond the limits. */
  growing: boolean;
}

/** Limits of {@link growthTrend}. */
export interface GrowthLimits {
  /** RSS may drift by this fraction of its second-half mean (GC and allocator noise). **Default**: 0.1. */
  rssFraction?: number;
  /** …and at least by this many MB. **Default**: 16. */
  rssFloorInMb?: number;
  /** Open handles may drift by this many. **Default**: 10. */
  handles?: number;
}

/**
 * Whether a process grows: the least-squares slope over the **second half** of the samples (the first half is
 * warm-up: caches, JIT, pools filling), extrapolated over that half, against the limits. A leak shows up as a
 * steady slope; a sawtooth from garbage collection averages out.
 */
export function growthTrend(samples: readonly ProcessSample[], limits: GrowthLimits = {}): GrowthTrend {
  const half = samples.slice(Math.floor(samples.length / 2));
  const span = half.length > 1 ? half.at(-1)!.atInMinutes - half[0]!.atInMinutes : 0;
  const rssSlope = leastSquaresSlope(half.map((s) => ({ x: s.atInMinutes, y: s.rssInMb })));
  const handleSlope = leastSquaresSlope(half.map((s) => ({ x: s.atInMinutes, y: s.openHandles })));
  const meanRss = half.reduce((sum, s) => sum + s.rssInMb, 0) / Math.max(1, half.length);
  const rssGrowth = rssSlope * span;
  const handleGrowth = handleSlope * span;
  const rssLimit = Math.max(limits.rssFloorInMb ?? 16, (limits.rssFraction ?? 0.1) * meanRss);
  return {
    samples: samples.length,
    rssSlopeInMbPerMinute: round(rssSlope),
    rssGrowthInMb: round(rssGrowth),
    handleSlopePerMinute: round(handleSlope),
    handleGrowth: round(handleGrowth),
    growing: rssGrowth > rssLimit || handleGrowth > (limits.handles ?? 10),
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
