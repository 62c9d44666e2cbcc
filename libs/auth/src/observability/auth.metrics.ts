import { metrics, type Attributes, type Counter, type Histogram, type MeterProvider } from '@opentelemetry/api';

/** Why a token request was sent. */
export type TokenRequestTrigger = 'cold' | 'refresh' | 'retry' | 'expired';

/** Names of the instruments, for dashboards and tests. */
export const authMetricNames = {
  /** Counter: token requests sent through the credential (attributes: audience, trigger, outcome). */
  tokenRequests: 'keyless.auth.token.requests',
  /** Counter: token lookups served from the cache without waiting (attribute: audience). */
  cacheHits: 'keyless.auth.token.cache_hits',
  /** Counter: failed token requests (attributes: audience, trigger, code). */
  failures: 'keyless.auth.token.failures',
  /** Histogram, seconds: duration of token requests (attributes: audience, trigger, outcome). */
  requestDuration: 'keyless.auth.token.request.duration',
  /** Counter: role refusals of Azure data planes, one per AccessDeniedError (attributes: resource, role, data_action). */
  accessDenials: 'keyless.auth.access.denials',
  /** Gauge, seconds: time until the soonest expiry of the held tokens (attribute: audience). */
  timeToExpiry: 'keyless.auth.token.time_to_expiry',
} as const;

/** The library's OpenTelemetry instruments (a no-op until the app registers a meter provider). */
export class AuthMetrics {
  private readonly tokenRequests: Counter;
  private readonly cacheHits: Counter;
  private readonly failures: Counter;
  private readonly requestDuration: Histogram;
  private readonly hitAttributes = new Map<string, Attributes>();

  constructor(provider: MeterProvider = metrics.getMeterProvider(), expiries: () => readonly { audience: string; expiresOn: number }[] = () => []) {
    const meter = provider.getMeter('@keyless/auth');
    this.tokenRequests = meter.createCounter(authMetricNames.tokenRequests, { description: 'Token requests sent to the identity endpoint or developer login' });
    this.cacheHits = meter.createCounter(authMetricNames.cacheHits, { description: 'Token lookups served from the cache' });
    this.failures = meter.createCounter(authMetricNames.failures, { description: 'Failed token requests' });
    this.requestDuration = meter.createHistogram(authMetricNames.requestDuration, { description: 'Duration of token requests', unit: 's' });
    meter
      .createObservableGauge(authMetricNames.timeToExpiry, { description: 'Time until the held token expires', unit: 's' })
      .addCallback((result) => {
        const now = Date.now();
        for (const { audience, expiresOn } of expiries()) result.observe(Math.max(0, (expiresOn - now) / 1000), { audience });
      });
  }

  cacheHit(audience: string): void {
    let attributes = this.hitAttributes.get(audience);
    if (!attributes) {
      attributes = { audience };
      this.hitAttributes.set(audience, attributes);
    }
    this.cacheHits.add(1, attributes);
  }

  tokenRequest(audience: string, trigger: TokenRequestTrigger, outcome: 'success' | 'failure', durationInMs: number, code?: string): void {
    const attributes = { audience, trigger, outcome };
    this.tokenRequests.add(1, attributes);
    this.requestDuration.record(durationInMs / 1000, attributes);
    if (outcome === 'failure') this.failures.add(1, { audience, trigger, code: code ?? 'Unknown' });
  }
}
