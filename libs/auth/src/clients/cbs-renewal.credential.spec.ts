import type { AccessToken } from '@azure/core-auth';
import { cbsRenewalCredential, renewalExpiry, serviceBusRenewalMarginInMs } from './cbs-renewal.credential.js';

/** When the Service Bus SDK renews: `expiresOnTimestamp − 2 min − now` (linkEntity.js). */
const sdkRenewalDelay = (reported: number, now: number): number => reported - serviceBusRenewalMarginInMs - now;

describe(renewalExpiry.name, () => {
  const now = 1_000_000;

  it('passes a long-lived token on unchanged (rule 1): the SDK renews 2 minutes before it expires', () => {
    const expiresOn = now + 24 * 3600_000;
    expect(renewalExpiry(expiresOn, now)).toBe(expiresOn);
    expect(sdkRenewalDelay(renewalExpiry(expiresOn, now), now)).toBe(24 * 3600_000 - 120_000);
  });

  it('makes the SDK renew a 60-second token at half its life instead of at once (rule 2)', () => {
    const delay = sdkRenewalDelay(renewalExpiry(now + 60_000, now), now);
    expect(delay).toBe(30_000);
    expect(delay).toBeLessThan(60_000);
  });

  it('never gives a negative renewal delay, even for a token that has expired', () => {
    expect(sdkRenewalDelay(renewalExpiry(now - 5_000, now), now)).toBe(0);
    expect(sdkRenewalDelay(renewalExpiry(now + 240_000, now), now)).toBe(120_000);
  });
});

describe(cbsRenewalCredential.name, () => {
  it('hands over the same token with the adjusted expiry, and nothing when the credential has none', async () => {
    const token: AccessToken = { token: 'header.payload.signature', expiresOnTimestamp: 61_000 };
    const credential = cbsRenewalCredential({ getToken: async () => token }, () => 1_000);
    expect(await credential.getToken('https://servicebus.azure.net//.default')).toEqual({ token: token.token, expiresOnTimestamp: 1_000 + 120_000 + 30_000 });
    expect(await cbsRenewalCredential({ getToken: async () => null }).getToken('x')).toBeNull();
  });
});
