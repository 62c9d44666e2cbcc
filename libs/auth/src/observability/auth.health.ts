import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
import type { ResolvedAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';

/** What the indicator reports (JSON-friendly: dates as ISO strings). A type, not an interface: Terminus wants an index signature. */
export type AuthHealthDetails = {
  identity: { mode: string; clientId?: string; endpoint?: string };
  /** Declared audiences (and any used since) with their token state. */
  audiences: {
    audience: string;
    valid: boolean;
    expiresOn?: string;
    nextRefreshAt?: string;
    consecutiveFailures: number;
  }[];
  /** The soonest expiry among valid tokens. */
  soonestExpiry?: string;
  /** The most recent failed token request of any audience. */
  lastFailure?: { audience: string; at: string; code: string; message: string };
  /** Why the status is not `up`. */
  message?: string;
};

/**
 * Terminus health indicator of the credential.
 * Rules:
 * - `down` when a declared audience holds no valid token (never acquired, or expired after failed refreshes).
 * - `degraded` when every declared audience holds a valid token but the last request of some audience
 *   failed (a refresh is failing: calls still succeed until expiry).
 * - `up` otherwise. Details always carry identity, audiences held, soonest expiry and last failure.
 *
 * @example
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.auth.isHealthy()]); }
 */
@Injectable()
export class AuthHealthIndicator {
  constructor(
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(AzureIdentityService) private readonly identity: AzureIdentityService,
    @Inject(RESOLVED_AUTH_OPTIONS) private readonly options: ResolvedAuthOptions,
  ) {}

  /** The indicator's result under `key`. Default key: `auth`. */
  isHealthy<const Key extends string = 'auth'>(key: Key = 'auth' as Key): HealthIndicatorResult<Key> {
    const details = this.details();
    const session = this.indicators.check(key);
    const statuses = this.identity.tokenStatus();
    const declared = new Set(this.options.audiences.map((a) => a.key));
    const missing = [...declared].filter((audience) => !statuses.some((s) => s.audience === audience && s.valid));
    if (missing.length) return session.down({ ...details, message: `no valid token for ${missing.join(', ')}` });
    const failing = statuses.filter((s) => s.consecutiveFailures > 0);
    if (failing.length) {
      return session.degraded({ ...details, message: `token refresh failing for ${failing.map((s) => s.audience).join(', ')}; serving tokens still valid` });
    }
    return session.up(details);
  }

  /** The details reported in every state. */
  details(): AuthHealthDetails {
    const statuses = this.identity.tokenStatus();
    const valid = statuses.filter((s) => s.valid && s.expiresOn).map((s) => s.expiresOn!.getTime());
    const last = statuses
      .filter((s) => s.lastFailure)
      .sort((a, b) => b.lastFailure!.at.getTime() - a.lastFailure!.at.getTime())[0];
    return {
      identity: this.identity.identity,
      audiences: statuses.map((s) => ({
        audience: s.audience,
        valid: s.valid,
        ...(s.expiresOn ? { expiresOn: s.expiresOn.toISOString() } : {}),
        ...(s.nextRefreshAt ? { nextRefreshAt: s.nextRefreshAt.toISOString() } : {}),
        consecutiveFailures: s.consecutiveFailures,
      })),
      ...(valid.length ? { soonestExpiry: new Date(Math.min(...valid)).toISOString() } : {}),
      ...(last?.lastFailure
        ? { lastFailure: { audience: last.audience, at: last.lastFailure.at.toISOString(), code: last.lastFailure.code, message: last.lastFailure.message } }
        : {}),
    };
  }
}
