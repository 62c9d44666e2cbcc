/**
 * ARM scopes. A role assignment at a scope applies to that resource and everything beneath it
 * (subscription → resource group → resource → child such as a queue), compared case-insensitively
 * by whole path segments, as Azure does.
 */
export function scopeContains(assignmentScope: string, resourceId: string): boolean {
  const outer = segments(assignmentScope);
  const inner = segments(resourceId);
  return outer.length <= inner.length && outer.every((segment, i) => segment === inner[i]);
}

/** Normalises a scope for display and storage: leading slash, no trailing slash. */
export function normalizeScope(scope: string): string {
  return `/${scope.split('/').filter(Boolean).join('/')}`;
}

/** Whether `scope` looks like an ARM scope (`/subscriptions/{id}[/…]`). */
export function isArmScope(scope: string): boolean {
  return /^\/subscriptions\/[^/]+(\/.+)?$/i.test(normalizeScope(scope));
}

function segments(scope: string): string[] {
  return scope.toLowerCase().split('/').filter(Boolean);
}

/** A scope that does not name anything in the local subscription; the message says what is accepted. */
export class InvalidScopeError extends Error {
  override readonly name = 'InvalidScopeError';
}
