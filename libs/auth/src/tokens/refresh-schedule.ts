/**
 * MSAL (under `ManagedIdentityCredential`) serves a cached token while `now + 300 s < expiresOn`
 * (`DEFAULT_TOKEN_RENEWAL_OFFSET_SEC`), so asking earlier returns the same token without a request.
 * The Azure CLI's own cache uses the same offset.
 */
export const sdkRenewalOffsetInMs = 300_000;

/** Seconds granularity of MSAL's expiry check, plus a little: ask this long after the offset is crossed. */
const afterOffsetInMs = 2_000;

/** A held token, as the schedule sees it (epoch milliseconds). */
export interface TokenTimes {
  acquiredAt: number;
  expiresOn: number;
  /** The SDK's `refreshAfterTimestamp` (MSAL's `refreshOn`), when it gave one. */
  refreshAfter?: number;
}

/**
 * When to refresh a token in the background, so that the refresh actually yields a new token and
 * callers never wait on the identity endpoint.
 *
 * Rules:
 * 1. The SDK named a refresh time (MSAL sets `refreshOn` = half the lifetime, only for tokens over 2 h):
 *    refresh then. Before it MSAL hands back its cached copy; after it, MSAL fetches a new one.
 * 2. No refresh time, lifetime over 5 min: MSAL serves its cached copy until 5 min before expiry and
 *    has no proactive refresh, so refresh just after that point (`expiresOn − 5 min + 2 s`).
 * 3. Lifetime of 5 min or less: MSAL does not cache such tokens at all; refresh at half the lifetime.
 * 4. The result is never earlier than `now + minimumDelayInMs`, so a clock oddity cannot spin.
 */
export function refreshTime(token: TokenTimes, now: number, minimumDelayInMs = 1_000): number {
  const lifetime = token.expiresOn - token.acquiredAt;
  let at: number;
  if (token.refreshAfter !== undefined && token.refreshAfter < token.expiresOn) at = token.refreshAfter;
  else if (lifetime > sdkRenewalOffsetInMs) at = token.expiresOn - sdkRenewalOffsetInMs + afterOffsetInMs;
  else at = token.acquiredAt + lifetime / 2;
  return Math.max(at, now + minimumDelayInMs);
}

/**
 * When to retry after the `failures`-th failed refresh in a row: `baseDelayInMs × 2^(failures−1)`,
 * capped at `maxDelayInMs`, and never after the last moment the held token may still be handed out
 * (so the last attempt happens while callers are still served).
 */
export function retryTime(failures: number, now: number, options: { baseDelayInMs: number; maxDelayInMs: number; servableUntil?: number }): number {
  const delay = Math.min(options.baseDelayInMs * 2 ** Math.max(0, failures - 1), options.maxDelayInMs);
  const at = now + delay;
  if (options.servableUntil !== undefined && options.servableUntil > now + options.baseDelayInMs && at > options.servableUntil - options.baseDelayInMs) {
    return Math.max(now + options.baseDelayInMs, options.servableUntil - options.baseDelayInMs);
  }
  return at;
}
