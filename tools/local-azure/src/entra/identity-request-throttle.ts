/** The per-host bounds of {@link IdentityRequestThrottle} (the configuration's `identityEndpoint.throttling`). */
export interface IdentityThrottlingOptions {
  /** Requests a host may make in any `windowInMs`. */
  requestsPerWindow: number;
  /** The sliding window, in ms. */
  windowInMs: number;
  /** Requests of a host in progress at once. */
  maxConcurrentRequests: number;
}

/** The outcome of asking to serve one request of a host. */
export type ThrottleDecision =
  | { admitted: true; /** Call once the response is sent: the request is no longer in progress. */ release: () => void }
  | {
      admitted: false;
      /** Which bound the request hit. */
      limit: 'rate' | 'concurrency';
      /** What the host did, in words for the log: "20 requests in the last 1000 ms" or "5 requests in progress". */
      detail: string;
    };

interface HostUsage {
  /** Times of the last `requestsPerWindow` admitted requests, a ring: `next` is the oldest once it is full. */
  admittedAt: number[];
  next: number;
  inProgress: number;
}

/**
 * Bounds the token requests of each host, as IMDS bounds a VM's.
 * Rules:
 * - A request is admitted if the host's admitted requests in the last `windowInMs` are fewer than
 *   `requestsPerWindow` (a sliding window, so no burst of twice the limit across a window boundary) and fewer than
 *   `maxConcurrentRequests` of its requests are in progress.
 * - A refused request costs nothing: a host that stops asking is admitted again once its oldest admitted request
 *   leaves the window.
 * - Hosts are independent. Memory per host is one timestamp per allowed request of a window.
 */
export class IdentityRequestThrottle {
  private readonly hosts = new Map<string, HostUsage>();

  constructor(
    readonly options: IdentityThrottlingOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Admits or refuses one request of `host`. */
  admit(host: string): ThrottleDecision {
    const { requestsPerWindow, windowInMs, maxConcurrentRequests } = this.options;
    let usage = this.hosts.get(host);
    if (!usage) {
      usage = { admittedAt: [], next: 0, inProgress: 0 };
      this.hosts.set(host, usage);
    }
    if (usage.inProgress >= maxConcurrentRequests) {
      return { admitted: false, limit: 'concurrency', detail: `${usage.inProgress} requests in progress` };
    }
    const now = this.now();
    const full = usage.admittedAt.length === requestsPerWindow;
    if (full && now - usage.admittedAt[usage.next]! < windowInMs) {
      return { admitted: false, limit: 'rate', detail: `${requestsPerWindow} requests in the last ${windowInMs} ms` };
    }
    if (full) usage.admittedAt[usage.next] = now;
    else usage.admittedAt.push(now);
    usage.next = (usage.next + 1) % requestsPerWindow;
    usage.inProgress++;
    const held = usage;
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        held.inProgress--;
      },
    };
  }
}
