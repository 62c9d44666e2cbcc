import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';

/** The Service Bus SDK renews a link's token this long before the expiry the credential reports (linkEntity.js). */
export const serviceBusRenewalMarginInMs = 120_000;

/**
 * The credential a `ServiceBusClient` gets. The SDK schedules each link's token renewal on `$cbs` at
 * `expiresOnTimestamp − 2 min`; a token that lives less than that (a short-lived test token, one fetched near
 * its end) makes the delay negative, and the SDK then puts a token again as soon as the last put-token returns —
 * a tight loop per link against the namespace ([obs] 1,617 put-tokens in 3 s with a 60-second token).
 *
 * Rules:
 * 1. A token with more than twice the margin left is passed on unchanged (the SDK renews 2 minutes before expiry,
 *    as it does in Azure with managed-identity tokens of about 24 hours).
 * 2. A shorter one is reported as expiring `margin + remaining / 2` from now, so the SDK renews it at half its
 *    remaining life — still before it really expires. The token itself is untouched: the namespace checks the
 *    real expiry inside it.
 *
 * @example
 * new ServiceBusClient(namespace, cbsRenewalCredential(identity.credential));
 */
export function cbsRenewalCredential(credential: TokenCredential, now: () => number = Date.now): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const token = await credential.getToken(scopes, options);
      return token ? { ...token, expiresOnTimestamp: renewalExpiry(token.expiresOnTimestamp, now()) } : token;
    },
  };
}

/** The expiry to report for a token that really expires at `expiresOn` (rules 1 and 2). */
export function renewalExpiry(expiresOn: number, now: number): number {
  const remaining = expiresOn - now;
  if (remaining > 2 * serviceBusRenewalMarginInMs) return expiresOn;
  return now + serviceBusRenewalMarginInMs + Math.max(0, remaining) / 2;
}
