import { createHash, randomBytes, randomUUID } from 'node:crypto';

/** A new random GUID (lowercase, as Azure prints them). */
export function newGuid(): string {
  return randomUUID();
}

/**
 * A deterministic GUID from its inputs, like Bicep's `guid(...)`: the same inputs give the same id, so
 * re-applying the access file is idempotent.
 */
export function deterministicGuid(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000').toLowerCase()).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Random base64url text of `bytes` bytes (opaque claim values such as `uti`, `aio`). */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a GUID in the 8-4-4-4-12 form. */
export function isGuid(value: string): boolean {
  return guidPattern.test(value);
}
