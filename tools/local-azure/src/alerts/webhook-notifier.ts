import type { ConsoleLog } from '../data-plane.js';
import type { Alert } from './alert-store.js';
import type { CommonAlertPayload } from './common-alert-schema.js';

/** Options of {@link WebhookNotifier}. */
export interface WebhookNotifierOptions {
  /** Where to POST (http or https; https trusts the system CAs and `NODE_EXTRA_CA_CERTS`). */
  url: string;
  /** Waits before each retry; its length is the number of retries. **Default**: 1 s, 5 s, 20 s, 60 s. */
  retryDelaysInMs?: readonly number[];
  /** Budget of one attempt (connect, send, answer). **Default**: 10000 ms. */
  attemptTimeoutInMs?: number;
  /** Notifications waiting or in flight at most; past that new ones are dropped, with a console line. **Default**: 1000. */
  maxPending?: number;
}

/** What happened to one notification (the portal shows it beside the alert). */
export interface DeliveryStatus {
  monitorCondition: Alert['monitorCondition'];
  state: 'pending' | 'delivered' | 'failed' | 'dropped';
  attempts: number;
  /** The last HTTP status or network error. */
  lastResult?: string;
  at: string;
}

export const webhookDefaults = {
  retryDelaysInMs: [1_000, 5_000, 20_000, 60_000],
  attemptTimeoutInMs: 10_000,
  maxPending: 1_000,
} as const;

/**
 * POSTs alerts to a webhook in the common alert schema, like an action group's webhook receiver. Deliveries run in
 * the background and never block the caller; each alert's notifications go out in order (fired before resolved).
 * Rules: a 2xx answer is delivered; a network error, a timeout, 408, 429 or a 5xx is retried after the next delay;
 * any other answer fails at once (the receiver refused it); after the last retry it fails. Failures are printed on the
 * console. `stop` abandons what is pending.
 */
export class WebhookNotifier {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly statuses = new Map<string, DeliveryStatus[]>();
  private readonly aborter = new AbortController();
  private pending = 0;
  private readonly retryDelaysInMs: readonly number[];
  private readonly attemptTimeoutInMs: number;
  private readonly maxPending: number;
  readonly url: string;

  constructor(
    options: WebhookNotifierOptions,
    private readonly log: ConsoleLog,
  ) {
    this.url = options.url;
    this.retryDelaysInMs = options.retryDelaysInMs ?? webhookDefaults.retryDelaysInMs;
    this.attemptTimeoutInMs = options.attemptTimeoutInMs ?? webhookDefaults.attemptTimeoutInMs;
    this.maxPending = options.maxPending ?? webhookDefaults.maxPending;
  }

  /** Queues the notification of `alert` (its current condition) and returns at once. */
  notify(alert: Alert, payload: CommonAlertPayload): void {
    const status: DeliveryStatus = { monitorCondition: alert.monitorCondition, state: 'pending', attempts: 0, at: new Date().toISOString() };
    this.statuses.set(alert.id, [...(this.statuses.get(alert.id) ?? []), status]);
    if (this.pending >= this.maxPending || this.aborter.signal.aborted) {
      status.state = 'dropped';
      this.log(`[alert] webhook: dropped the ${alert.monitorCondition} notification of "${alert.ruleName}" (${this.pending} notifications pending)`);
      return;
    }
    this.pending++;
    const previous = this.chains.get(alert.id) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(alert, payload, status)).finally(() => {
      this.pending--;
      if (this.chains.get(alert.id) === next) this.chains.delete(alert.id);
    });
    this.chains.set(alert.id, next);
  }

  /** Delivery statuses of an alert's notifications, oldest first. */
  deliveries(alertId: string): readonly DeliveryStatus[] {
    return this.statuses.get(alertId) ?? [];
  }

  /** Resolves once every queued notification is delivered or has failed (tests, benchmarks). */
  async settled(): Promise<void> {
    while (this.chains.size) await Promise.all([...this.chains.values()]);
  }

  /** Abandons pending notifications and retries. */
  stop(): void {
    this.aborter.abort();
  }

  private async deliver(alert: Alert, payload: CommonAlertPayload, status: DeliveryStatus): Promise<void> {
    const body = JSON.stringify(payload);
    for (let attempt = 0; ; attempt++) {
      if (this.aborter.signal.aborted) {
        status.state = 'dropped';
        return;
      }
      status.attempts = attempt + 1;
      let retry: boolean;
      try {
        const response = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.attemptTimeoutInMs)]),
        });
        await response.body?.cancel();
        status.lastResult = `HTTP ${response.status}`;
        if (response.ok) {
          status.state = 'delivered';
          status.at = new Date().toISOString();
          return;
        }
        retry = response.status === 408 || response.status === 429 || response.status >= 500;
      } catch (error) {
        status.lastResult = describe(error);
        retry = true;
      }
      const delay = this.retryDelaysInMs[attempt];
      if (!retry || delay === undefined || this.aborter.signal.aborted) {
        status.state = this.aborter.signal.aborted ? 'dropped' : 'failed';
        status.at = new Date().toISOString();
        if (!this.aborter.signal.aborted) {
          this.log(`[alert] webhook: the ${alert.monitorCondition} notification of "${alert.ruleName}" failed after ${attempt + 1} attempt(s): ${status.lastResult}`);
        }
        return;
      }
      await sleep(delay, this.aborter.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === 'TimeoutError') return 'timed out';
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}
