import type { AccessToken } from '@azure/core-auth';
import type { LoggerService } from '@nestjs/common';
import type { Audience } from '../audiences.js';
import { AuthError, TokenAcquisitionError } from '../errors.js';
import { TokenRequestDeadlineError, type IdentityBinding } from '../identity/identity-credential.js';
import type { AuthMetrics, TokenRequestTrigger } from '../observability/auth.metrics.js';
import { refreshTime, retryTime } from './refresh-schedule.js';
import { readTokenClaims, type TokenClaims } from './token-claims.js';

/** Timing options of a {@link TokenCache} (see `authDefaults` for the defaults). */
export interface TokenCacheOptions {
  tokenRequestTimeoutInMs: number;
  refreshRetryDelayInMs: number;
  maxRefreshRetryDelayInMs: number;
  expiryMarginInMs: number;
}

/** A token held for one audience. */
interface HeldToken {
  accessToken: AccessToken;
  acquiredAt: number;
  /** After this, the token is no longer handed out (expiry minus the margin). */
  servableUntil: number;
  /** When the background refresh is due. */
  refreshAt: number;
  claims: TokenClaims | undefined;
}

/** The last failed token request of an audience. */
export interface TokenFailure {
  at: Date;
  code: AuthError['code'];
  message: string;
  trigger: TokenRequestTrigger;
}

/** What the cache holds for one audience (health, diagnostics). */
export interface AudienceTokenStatus {
  audience: string;
  resource: string;
  /** Whether a token that may be handed out is held. */
  valid: boolean;
  expiresOn?: Date;
  /** When the next background refresh (or retry) is due. */
  nextRefreshAt?: Date;
  lastRefreshedAt?: Date;
  /** Failed requests in a row (0 after a success). */
  consecutiveFailures: number;
  lastFailure?: TokenFailure;
  claims?: TokenClaims;
}

/** One audience's slot. Callers of a fixed audience keep a reference to skip the map lookup. */
export class AudienceSlot {
  held: HeldToken | undefined;
  inflight: Promise<HeldToken> | undefined;
  timer: NodeJS.Timeout | undefined;
  nextRefreshAt: number | undefined;
  consecutiveFailures = 0;
  lastFailure: TokenFailure | undefined;
  /** Declared by the app (health watches it; failures are retried in the background even before a first token). */
  declared = false;

  constructor(readonly audience: Audience) {}
}

const noop = (): void => undefined;

/**
 * Tokens per audience on top of the SDK credential, so that no caller waits on the identity endpoint
 * once a token is held.
 * Rules:
 * - A held token is handed out until `expiresOn − expiryMargin`; each hand-out is one cache hit.
 * - Callers without a servable token share one in-flight request per audience (N callers → 1 request).
 * - A background refresh is scheduled per token at the time {@link refreshTime} picks (MSAL's cache
 *   decides when a request can actually yield a new token); a lookup past that time starts it if the
 *   timer has not (event-loop stall).
 * - A failed background refresh never reaches callers while the held token is servable: it is counted,
 *   logged and kept as `lastFailure`, and retried with backoff ({@link retryTime}); retries go on after
 *   expiry so the service recovers without traffic. An audience that never held a token and was not
 *   declared is retried by its next caller instead.
 * - If a refresh returns the token already held, it asks once more (MSAL's refresh path returns the old
 *   token once); the same token twice is a failure (`TokenNotRenewed`: the SDK swallowed its error).
 * - Every request is bounded by `tokenRequestTimeoutInMs`, whatever the SDK's retries do.
 */
export class TokenCache {
  private readonly slots = new Map<string, AudienceSlot>();
  private closed = false;

  constructor(
    private readonly binding: IdentityBinding,
    private readonly options: TokenCacheOptions,
    private readonly metrics: AuthMetrics,
    private readonly logger: LoggerService,
  ) {}

  /** The slot of `audience` (created on first use); `declared` marks an audience the app declared. */
  slot(audience: Audience, declared = false): AudienceSlot {
    let slot = this.slots.get(audience.scope);
    if (!slot) {
      slot = new AudienceSlot(audience);
      this.slots.set(audience.scope, slot);
    }
    if (declared) slot.declared = true;
    return slot;
  }

  /**
   * A token for `slot`'s audience: the held one when servable (no waiting), else the shared in-flight
   * request's result.
   *
   * @throws {TokenAcquisitionError} when no servable token is held and the request fails.
   */
  async getToken(slot: AudienceSlot, abortSignal?: AbortSignal): Promise<AccessToken> {
    const held = this.servable(slot);
    if (held !== undefined) return held;
    const inflight = slot.inflight ?? this.startRequest(slot, slot.held ? 'expired' : 'cold');
    return (await (abortSignal ? abortable(inflight, abortSignal) : inflight)).accessToken;
  }

  /**
   * The held token of `slot` if it may be handed out (counted as a cache hit; starts the refresh when
   * it is due and its timer has not fired), without allocating; undefined otherwise.
   */
  servable(slot: AudienceSlot): AccessToken | undefined {
    const held = slot.held;
    if (held === undefined) return undefined;
    const now = Date.now();
    if (now >= held.servableUntil) return undefined;
    this.metrics.cacheHit(slot.audience.key);
    // nextRefreshAt is the refresh time, or after a failure the retry time (never hammer a failing endpoint).
    const due = slot.nextRefreshAt;
    if (due !== undefined && now >= due && slot.inflight === undefined) this.startRequest(slot, slot.consecutiveFailures ? 'retry' : 'refresh');
    return held.accessToken;
  }

  /** Status of every audience used so far. */
  status(): AudienceTokenStatus[] {
    const now = Date.now();
    return [...this.slots.values()].map((slot) => {
      const held = slot.held;
      return {
        audience: slot.audience.key,
        resource: slot.audience.resource,
        valid: !!held && now < held.servableUntil,
        ...(held ? { expiresOn: new Date(held.accessToken.expiresOnTimestamp), lastRefreshedAt: new Date(held.acquiredAt) } : {}),
        ...(slot.nextRefreshAt !== undefined ? { nextRefreshAt: new Date(slot.nextRefreshAt) } : {}),
        consecutiveFailures: slot.consecutiveFailures,
        ...(slot.lastFailure ? { lastFailure: slot.lastFailure } : {}),
        ...(held?.claims ? { claims: held.claims } : {}),
      };
    });
  }

  /** Claims of the token held (or last held) for `audience`, for diagnostics. */
  claims(audience: Audience): TokenClaims | undefined {
    return this.slots.get(audience.scope)?.held?.claims;
  }

  /** Stops every timer; held tokens stay usable, nothing is refreshed any more. */
  close(): void {
    this.closed = true;
    for (const slot of this.slots.values()) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.nextRefreshAt = undefined;
    }
  }

  private startRequest(slot: AudienceSlot, trigger: TokenRequestTrigger): Promise<HeldToken> {
    const request = this.request(slot, trigger).finally(() => {
      if (slot.inflight === request) slot.inflight = undefined;
    });
    slot.inflight = request;
    // Background triggers have no caller; foreground callers still receive the rejection.
    request.catch(noop);
    return request;
  }

  private async request(slot: AudienceSlot, trigger: TokenRequestTrigger): Promise<HeldToken> {
    const { audience } = slot;
    const started = Date.now();
    const attemptsBefore = this.binding.attempts(audience.resource);
    clearTimeout(slot.timer);
    slot.timer = undefined;
    let token: AccessToken;
    try {
      token = await this.fetch(audience);
      const previous = slot.held?.accessToken.token;
      if (previous !== undefined && token.token === previous) {
        // MSAL's proactive-refresh path refreshes its cache but returns the old token this once.
        token = await this.fetch(audience);
        if (token.token === previous) {
          throw new TokenAcquisitionError(
            'TokenNotRenewed',
            `Refresh of the token for ${audience.resource} returned the token already held (valid until ` +
              `${new Date(token.expiresOnTimestamp).toISOString()}): the SDK kept its cached token, so its own refresh request failed ` +
              `(identity ${this.binding.clientId ?? this.binding.mode}${this.binding.endpoint() ? `, endpoint ${this.binding.endpoint()}` : ''}).`,
            {
              mode: this.binding.mode,
              ...(this.binding.clientId ? { clientId: this.binding.clientId } : {}),
              resource: audience.resource,
              ...(this.binding.endpoint() ? { endpoint: this.binding.endpoint()! } : {}),
            },
          );
        }
      }
    } catch (error) {
      const failure = error instanceof AuthError ? error : this.binding.explain(error, audience.resource, attemptsBefore);
      this.recordFailure(slot, trigger, failure, Date.now() - started);
      throw failure;
    }
    return this.accept(slot, trigger, token, started);
  }

  private async fetch(audience: Audience): Promise<AccessToken> {
    const timeoutInMs = this.options.tokenRequestTimeoutInMs;
    const pending = this.binding.credential.getToken(audience.scope);
    pending.catch(noop);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TokenRequestDeadlineError(timeoutInMs)), timeoutInMs);
      timer.unref();
    });
    try {
      const token = await Promise.race([pending, deadline]);
      if (!token) throw new Error(`the credential returned no token for ${audience.scope}`);
      return token;
    } finally {
      clearTimeout(timer);
    }
  }

  private accept(slot: AudienceSlot, trigger: TokenRequestTrigger, token: AccessToken, started: number): HeldToken {
    const now = Date.now();
    const failuresBefore = slot.consecutiveFailures;
    const refreshAt = refreshTime(
      {
        acquiredAt: started,
        expiresOn: token.expiresOnTimestamp,
        ...(token.refreshAfterTimestamp !== undefined ? { refreshAfter: token.refreshAfterTimestamp } : {}),
      },
      now,
    );
    const held: HeldToken = {
      // refreshAfterTimestamp tells SDK token cyclers to ask again once our refresh is due.
      accessToken: { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp, refreshAfterTimestamp: refreshAt, tokenType: 'Bearer' },
      acquiredAt: now,
      servableUntil: token.expiresOnTimestamp - this.options.expiryMarginInMs,
      refreshAt,
      claims: readTokenClaims(token.token),
    };
    slot.held = held;
    slot.consecutiveFailures = 0;
    this.metrics.tokenRequest(slot.audience.key, trigger, 'success', now - started);
    if (failuresBefore > 0) {
      this.logger.log(`Token for ${slot.audience.key} acquired after ${failuresBefore} failed attempt(s); valid until ${new Date(token.expiresOnTimestamp).toISOString()}.`);
    }
    this.schedule(slot, refreshAt, 'refresh');
    return held;
  }

  private recordFailure(slot: AudienceSlot, trigger: TokenRequestTrigger, failure: AuthError, durationInMs: number): void {
    const now = Date.now();
    slot.consecutiveFailures += 1;
    slot.lastFailure = { at: new Date(now), code: failure.code, message: failure.message, trigger };
    this.metrics.tokenRequest(slot.audience.key, trigger, 'failure', durationInMs, failure.code);
    const held = slot.held;
    const servable = held !== undefined && now < held.servableUntil;
    const retryAt = retryTime(slot.consecutiveFailures, now, {
      baseDelayInMs: this.options.refreshRetryDelayInMs,
      maxDelayInMs: this.options.maxRefreshRetryDelayInMs,
      ...(servable ? { servableUntil: held.servableUntil } : {}),
    });
    // An audience that never had a token and was not declared is retried by its next caller, not in the background.
    const retry = !this.closed && (held !== undefined || slot.declared);
    const next = retry ? `next attempt at ${new Date(retryAt).toISOString()}` : 'next attempt on the next call';
    if (servable) {
      this.logger.warn(
        `Token refresh for ${slot.audience.key} failed [${failure.code}]; still serving the current token ` +
          `(valid until ${new Date(held.accessToken.expiresOnTimestamp).toISOString()}), ${next}. ${failure.message}`,
      );
    } else if (trigger === 'refresh' || trigger === 'retry') {
      this.logger.error(`Token refresh for ${slot.audience.key} failed [${failure.code}] and no valid token is held; ${next}. ${failure.message}`);
    }
    if (retry) this.schedule(slot, retryAt, 'retry');
    else {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.nextRefreshAt = undefined;
    }
  }

  private schedule(slot: AudienceSlot, at: number, trigger: TokenRequestTrigger): void {
    clearTimeout(slot.timer);
    if (this.closed) {
      slot.timer = undefined;
      slot.nextRefreshAt = undefined;
      return;
    }
    slot.nextRefreshAt = at;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (slot.inflight === undefined && !this.closed) this.startRequest(slot, trigger);
    }, Math.max(0, at - Date.now()));
    // Refresh timers never keep a process alive on their own.
    slot.timer.unref();
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // SDKs pass an AbortSignalLike, which may carry no reason.
  const reason = (): Error => (signal.reason as Error | undefined) ?? new DOMException('The token request was aborted.', 'AbortError');
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
