import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares a presented secret (identity header, capability, credential) with the expected one in constant
 * time: both are hashed to SHA-256 digests of equal length first, so neither the content nor the length of
 * the expected value shows in the comparison's timing. An absent value never matches.
 */
export function secretEquals(presented: string | undefined, expected: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();
  const same = timingSafeEqual(digest(presented ?? ''), digest(expected));
  return same && presented !== undefined && expected.length > 0;
}

/** The SHA-256 digest of a secret, hex: what is stored where a secret must be recognised but not kept. */
export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
