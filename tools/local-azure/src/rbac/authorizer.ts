import type { AuditLog } from '../audit/audit-log.js';
import { principalNameOf, type Directory } from '../entra/directory.js';
import { findRole, grants, grantsAction, rolesGranting, type RoleDefinition } from './built-in-roles.js';
import type { RoleAssignment, RoleAssignmentStore } from './role-assignments.js';
import { scopeContains } from './scope.js';

/** The outcome of one RBAC check. */
export interface AuthorizationDecision {
  allowed: boolean;
  principalId: string;
  /** The data action checked (data planes). */
  dataAction?: string;
  /** The control-plane action checked (the management API). */
  action?: string;
  /** The ARM id of what was accessed. */
  scope: string;
  /** The assignment that granted access, when allowed. */
  assignment?: RoleAssignment;
  /** The least-privileged built-in role that would grant the data action (for error messages and fixes). */
  roleNeeded?: RoleDefinition;
}

/** What a data plane is checking, for the authorization log. */
export interface AuthorizationContext {
  /** The local resource deciding (`management`, `serviceBus`, `openAi`, `vision`, …). */
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
 * Azure RBAC, both planes: a request is allowed when some assignment of the principal, at the accessed scope or
 * an enclosing one, has a role that grants what is asked — a data action through the role's `dataActions` /
 * `notDataActions` ({@link check}), a control-plane action through its `actions` / `notActions`
 * ({@link checkAction}). Every decision is written to the authorization log (except allowed re-checks that
 * opt out with `recordAllowed: false`).
 */
export class Authorizer {
  constructor(
    private readonly assignments: RoleAssignmentStore,
    private readonly directory: Directory,
    private readonly log: AuditLog,
  ) {}

  /** A data action (data planes). */
  check(principalId: string, dataAction: string, scope: string, context: AuthorizationContext): AuthorizationDecision {
    const assignment = this.find(principalId, scope, (role) => grants(role, dataAction));
    const roleNeeded = rolesGranting(dataAction)[0];
    return this.decide({ allowed: !!assignment, principalId, dataAction, scope, ...(assignment ? { assignment } : {}), ...(roleNeeded ? { roleNeeded } : {}) }, context);
  }

  /**
   * A control-plane action (the management API). `onlyRoles` narrows which roles may grant it: the local
   * Azure's own operations without an Azure counterpart (key rollover, fault injection) are Owner's alone.
   */
  checkAction(principalId: string, action: string, scope: string, context: AuthorizationContext, onlyRoles?: readonly string[]): AuthorizationDecision {
    const assignment = this.find(principalId, scope, (role) => grantsAction(role, action) && (!onlyRoles || onlyRoles.includes(role.name)));
    return this.decide({ allowed: !!assignment, principalId, action, scope, ...(assignment ? { assignment } : {}) }, context);
  }

  private find(principalId: string, scope: string, roleGrants: (role: RoleDefinition) => boolean): RoleAssignment | undefined {
    return this.assignments.all().find((a) => {
      if (a.principalId !== principalId || !scopeContains(a.scope, scope)) return false;
      const role = findRole(a.roleDefinitionId);
      return !!role && roleGrants(role);
    });
  }

  private decide(decision: AuthorizationDecision, context: AuthorizationContext): AuthorizationDecision {
    if (decision.allowed && context.recordAllowed === false) return decision;
    const principal = this.directory.findPrincipal(decision.principalId);
    this.log.recordAuthorization({
      resource: context.resource,
      principalId: decision.principalId,
      ...(context.clientId ? { clientId: context.clientId } : {}),
      ...(principal ? { identity: principalNameOf(principal) } : {}),
      ...(decision.action ? { action: decision.action } : {}),
      ...(decision.dataAction ? { dataAction: decision.dataAction } : {}),
      scope: decision.scope,
      decision: decision.allowed ? 'allowed' : 'denied',
      ...(decision.assignment ? { assignmentId: decision.assignment.id, role: decision.assignment.roleDefinitionName } : {}),
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
