import { principalNameOf, type Directory } from '../entra/directory.js';
import { ArmError } from '../management/arm-error.js';
import type { AccessCheck, ControlPlaneGuard } from '../management/control-plane-guard.js';
import { controlPlaneActions } from '../management/control-plane-actions.js';
import { serviceBusOperatorDataActions } from '../servicebus/admin-routes.js';

/** The signed-in user a portal session acts as. */
export interface PortalOperator {
  /** Object id of the user's principal (the `oid` of the ARM token that minted the sign-in link). */
  principalId: string;
  /** Display name: the user's UPN (an application's client id). */
  name: string;
  /** The public client the user signed in with (`appid` of that token). */
  clientId: string;
  principalType: 'User' | 'ServicePrincipal';
}

/** The outcome of an authorization check of the control plane. */
export interface OperatorDecision {
  allowed: boolean;
  /** ARM's `AuthorizationFailed` message when refused: names the principal, the action and the scope. */
  message?: string;
}

/** What the portal asks about: a control-plane action, or a data action of an operator tool. */
export type PortalPermission = { action: string } | { dataAction: string };

/**
 * The one seam between the portal and the control plane: whether the signed-in user may do something at a scope.
 * The portal authorizes nothing itself; every write (role assignments, Service Bus operator tools) asks with the
 * same action the control plane checks for the same call through the CLI or ARM, and the decision is logged.
 */
export interface OperatorAuthority {
  /**
   * Whether `operator` may have `permission` at `scope` (logged in the authorization log with `operation`; an allowed
   * decision not when `options.recordAllowed` is false, for the re-check of access a session already holds).
   */
  authorize(operator: PortalOperator, permission: PortalPermission, scope: string, operation?: string, options?: { recordAllowed?: boolean }): OperatorDecision;
  /** A display name for a principal id (users and identities), when known. */
  principalName?(principalId: string): string | undefined;
}

/** RBAC permissions the portal asks about, named once (the same the control plane checks for the CLI and ARM calls). */
export const portalActions = {
  readAssignments: { action: controlPlaneActions.roleAssignmentsRead },
  writeAssignments: { action: controlPlaneActions.roleAssignmentsWrite },
  deleteAssignments: { action: controlPlaneActions.roleAssignmentsDelete },
  /** Peek into an entity or its dead-letter queue: Azure Service Bus Data Owner. */
  serviceBusPeek: { dataAction: serviceBusOperatorDataActions.peek },
  /** Purge an entity's messages or its dead-letter queue: Azure Service Bus Data Owner (as the CLI's `servicebus purge`). */
  serviceBusPurge: { dataAction: serviceBusOperatorDataActions.purge },
  /** Resubmit dead-lettered messages: Azure Service Bus Data Owner. */
  serviceBusResubmit: { dataAction: serviceBusOperatorDataActions.resubmit },
} as const satisfies Record<string, PortalPermission>;

/**
 * What a user must be allowed to open a portal session at all, and to go on using it: the portal's pages show the
 * subscription's role assignments and logs, so reading them there (Reader and above). A service identity, which may
 * not, cannot mint a sign-in link for itself; a user who loses the right is refused at the session's next request.
 */
export function portalSignInChecks(subscriptionId: string): AccessCheck[] {
  const scope = `/subscriptions/${subscriptionId}`;
  return [
    { action: controlPlaneActions.roleAssignmentsRead, scope },
    { action: controlPlaneActions.logsRead, scope },
  ];
}

/** The control plane as the portal's authority: RBAC through the same guard as the management API. */
export function controlPlaneAuthority(guard: ControlPlaneGuard, directory: Directory): OperatorAuthority {
  return {
    authorize(operator, permission, scope, operation = 'portal', options = {}) {
      const principal = directory.findPrincipal(operator.principalId);
      const caller = {
        principalId: operator.principalId,
        clientId: operator.clientId,
        ...(principal ? { principal } : {}),
        displayName: operator.name,
        principalType: operator.principalType,
      };
      try {
        guard.authorize(caller, [{ ...permission, scope }], operation, options);
        return { allowed: true };
      } catch (error) {
        if (error instanceof ArmError && error.status === 403) return { allowed: false, message: error.message };
        throw error;
      }
    },
    principalName(principalId) {
      const principal = directory.findPrincipal(principalId);
      return principal && principal.principalId === principalId ? principalNameOf(principal) : undefined;
    },
  };
}
