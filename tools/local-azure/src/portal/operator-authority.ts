import type { IncomingMessage } from 'node:http';

/** The signed-in operator a portal session acts as. */
export interface PortalOperator {
  /** Object id of the operator's principal (the `oid` of its ARM token). */
  principalId: string;
  /** Display name (user principal name, or identity name). */
  name: string;
}

/** The outcome of an authorization check of the control plane. */
export interface OperatorDecision {
  allowed: boolean;
  /** ARM's `AuthorizationFailed` message when refused: names the principal, the action and the scope. */
  message?: string;
}

/**
 * The one seam between the portal and the control plane's operator model: who is calling the admin API (from its
 * ARM token) and whether an operator may perform an RBAC action at a scope. The portal authenticates nobody and
 * authorizes nothing itself: the one-time sign-in link is minted by an admin API call this authority authenticates,
 * and every write (role assignments, Service Bus operator actions) asks it with the action the control plane checks
 * for the same call through the CLI or ARM.
 */
export interface OperatorAuthority {
  /**
   * The operator calling the admin API.
   *
   * @throws an error with `status` 401 and ARM's `InvalidAuthenticationToken` code when the call carries no valid token.
   */
  authenticate(request: IncomingMessage): Promise<PortalOperator>;
  /** Whether `operator` may perform `action` (an RBAC action, e.g. `Microsoft.Authorization/roleAssignments/write`) at `scope`. */
  authorize(operator: PortalOperator, action: string, scope: string): OperatorDecision;
  /** A display name for a principal id (operators and identities), when known. */
  principalName?(principalId: string): string | undefined;
}

/** RBAC actions the portal asks about, named once (the same the control plane checks for the CLI and ARM calls). */
export const portalActions = {
  readAssignments: 'Microsoft.Authorization/roleAssignments/read',
  writeAssignments: 'Microsoft.Authorization/roleAssignments/write',
  deleteAssignments: 'Microsoft.Authorization/roleAssignments/delete',
  /** Peek and resubmit dead-lettered messages: Azure Service Bus Data Owner (its data actions are `Microsoft.ServiceBus/*`). */
  serviceBusOperator: 'Microsoft.ServiceBus/*',
} as const;

/**
 * The admin API's trust as it is before the control plane authenticates callers (issue 12): whoever reaches the admin
 * API over its TLS port acts as the one local operator, with every right — exactly what the CLI can do today. It is
 * replaced by the control plane's token and RBAC checks, without changes to the portal.
 */
export const adminApiAuthority: OperatorAuthority = {
  authenticate: () => Promise.resolve({ principalId: 'local-operator', name: 'local operator (admin API)' }),
  authorize: () => ({ allowed: true }),
};
