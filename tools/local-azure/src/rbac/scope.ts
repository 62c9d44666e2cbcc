// Scope containment lives in @keyless/contracts (one rule for the local Azure, the portal and the doctor).
export { scopeContains } from '@keyless/contracts';

/**
 * Normalises a scope for display and storage: leading slash, no trailing slash.
 *
 * @throws {InvalidScopeError} for a `.` or `..` segment: RBAC compares scopes segment by segment, so
 * `…/queues/orders/../../..` is beneath the queue to it, while anything that resolves paths (a URL parser, a
 * reader) takes it for the subscription — an assignment that reads as more than it grants, made by whoever may
 * write at the queue.
 */
export function normalizeScope(scope: string): string {
  const segments = scope.split('/').filter(Boolean);
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw new InvalidScopeError(`The scope '${scope}' is not a valid ARM scope: it has a '.' or '..' segment.`);
  }
  return `/${segments.join('/')}`;
}

/**
 * Whether `scope` looks like an ARM scope (`/subscriptions/{id}[/…]`).
 * @throws {InvalidScopeError} when it has a `.` or `..` segment (see {@link normalizeScope}).
 */
export function isArmScope(scope: string): boolean {
  return /^\/subscriptions\/[^/]+(\/.+)?$/i.test(normalizeScope(scope));
}

/** A scope that does not name anything in the local subscription; the message says what is accepted. */
export class InvalidScopeError extends Error {
  override readonly name = 'InvalidScopeError';
}
