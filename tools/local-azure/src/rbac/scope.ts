// Scope containment lives in @keyless/contracts (one rule for the local Azure, the portal and the doctor).
export { scopeContains } from '@keyless/contracts';

/** Normalises a scope for display and storage: leading slash, no trailing slash. */
export function normalizeScope(scope: string): string {
  return `/${scope.split('/').filter(Boolean).join('/')}`;
}

/** Whether `scope` looks like an ARM scope (`/subscriptions/{id}[/…]`). */
export function isArmScope(scope: string): boolean {
  return /^\/subscriptions\/[^/]+(\/.+)?$/i.test(normalizeScope(scope));
}

/** A scope that does not name anything in the local subscription; the message says what is accepted. */
export class InvalidScopeError extends Error {
  override readonly name = 'InvalidScopeError';
}
