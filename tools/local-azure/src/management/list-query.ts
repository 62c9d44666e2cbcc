import { ArmError } from './arm-error.js';

/** The most rows one list query of the management API returns (`limit`). */
export const maxListLimit = 1000;

/**
 * The `limit` query parameter of a list: `fallback` when absent, else a whole number from 1 to {@link maxListLimit}.
 * @throws {ArmError} 400 `InvalidFilter` naming the value otherwise (`-1` used to return every retained row).
 */
export function listLimit(url: URL, fallback = 100): number {
  const value = url.searchParams.get('limit');
  if (value === null) return fallback;
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > maxListLimit) {
    throw new ArmError(400, 'InvalidFilter', `limit must be a whole number from 1 to ${maxListLimit}, not "${value.slice(0, 40)}".`);
  }
  return limit;
}
