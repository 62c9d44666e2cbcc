import type { AuditLog } from '../audit/audit-log.js';
import type { Directory } from '../entra/directory.js';
import { findRole, grants, rolesGranting, type RoleDefinition } from './built-in-roles.js';
import type { RoleAssignment, RoleAssignmentStore } from './role-assignments.js';
import { scopeContains } from './scope.js';

/** The outcome of one RBAC check. */
export interface AuthorizationDecision {
  allowed: boolean;
  principalId: string;
  dataAction: string;
  /** The ARM id of what was accessed. */
  scope: string;
  /** The assignment that granted access, when allowed. */
  assignment?: RoleAssignment;
  /** The least-privileged built-in role that would grant the data action (for error messages and fixes). */
  roleNeeded?: RoleDefinition;
}

/** What a data plane is checking, for the authorization log. */
export interface AuthorizationContext {
  /** The local resource deciding (`serviceBus`, `openAi`, `vision`, …). */
  resource: string;
  /** What the caller tried, in the data plane's terms. */
  operation: string;
  clientId?: string;
  /**
   * Whether an allowed decision is written to the authorization log. Denials always are. `false` for
   * periodic re-checks of access already granted (a line per open link and interval says nothing new).
   * **Default**: true.
   */
  recordAllowed?: boolean;
}

/**
 * Azure RBAC for data actions: allowed when some assignment of the principal, at the accessed resource
 * or an enclosing scope, has a role whose data actions include the requested one. Every decision is
 * written to the authorization log (except allowed re-checks that opt out with `recordAllowed: false`).
 */
export class Authorizer {
  constructor(
    private readonly assignments: RoleAssignmentStore,
    private readonly directory: Directory,
    private readonly log: AuditLog,
  ) {}

  check(principalId: string, dataAction: string, scope: string, context: AuthorizationContext): AuthorizationDecision {
    const assignment = this.assignments
      .all()
      .find((a) => a.principalId === principalId && scopeContains(a.scope, scope) && grantsAction(a, dataAction));
    const decision: AuthorizationDecision = {
      allowed: !!assignment,
      principalId,
      dataAction,
      scope,
      ...(assignment ? { assignment } : {}),
      ...(rolesGranting(dataAction)[0] ? { roleNeeded: rolesGranting(dataAction)[0] } : {}),
    };
    if (decision.allowed && context.recordAllowed === false) return decision;
    const identity = this.directory.findIdentity(principalId);
    this.log.recordAuthorization({
      resource: context.resource,
      principalId,
      ...(context.clientId ? { clientId: context.clientId } : {}),
      ...(identity ? { identity: identity.name } : {}),
      dataAction,
      scope,
      decision: decision.allowed ? 'allowed' : 'denied',
      ...(assignment ? { assignmentId: assignment.id, role: assignment.roleDefinitionName } : {}),
      operation: context.operation,
    });
    return decision;
  }

  /** Subscribes to role assignment changes (called after each change); returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    return this.assignments.onChange(listener);
  }

  /** Picks up role assignment changes another process committed (see {@link RoleAssignmentStore.refresh}). */
  refresh(): void {
    this.assignments.refresh();
  }
}

function grantsAction(assignment: RoleAssignment, dataAction: string): boolean {
  const role = findRole(assignment.roleDefinitionId);
  return !!role && grants(role, dataAction);
}
