import { builtInRoles, dataActions, grants, type RoleDefinition } from './azure-roles.js';

/** A role assignment reduced to what "check access" needs (the local Azure's store and ARM's REST shape both have it). */
export interface AssignmentRef {
  /** `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`. */
  id: string;
  principalId: string;
  /** The role definition's GUID, or its full ARM id (`…/roleDefinitions/{guid}`). */
  roleDefinitionId: string;
  scope: string;
}

/** One data action of "check access": whether the principal has it on the scope, and which assignments grant it. */
export interface EffectiveDataAction {
  dataAction: string;
  granted: boolean;
  /** Every assignment that grants it, with its role and the scope it is made at (the scope itself or one above it). */
  grantedBy: { assignmentId: string; role: string; scope: string }[];
}

/**
 * "Check access", as the portal's IAM blade shows it: for each data action, whether `principalId` has it on `scope`
 * and which of `assignments` grant it. An assignment applies at its scope and everything beneath it, compared by whole
 * path segments without regard to case, as Azure does.
 *
 * @param actions the data actions to evaluate. **Default**: every data action the Keyless data planes check.
 * @param roles role definitions to resolve `roleDefinitionId` with. **Default**: the built-in roles.
 * @example effectiveDataActions(identity.principalId, openAiResourceId, store.all())
 */
export function effectiveDataActions(
  principalId: string,
  scope: string,
  assignments: readonly AssignmentRef[],
  actions: readonly string[] = Object.values(dataActions),
  roles: readonly RoleDefinition[] = builtInRoles,
): EffectiveDataAction[] {
  const applying = assignments
    .filter((a) => a.principalId.toLowerCase() === principalId.toLowerCase() && scopeContains(a.scope, scope))
    .map((a) => ({ assignment: a, role: roles.find((r) => r.id === roleGuid(a.roleDefinitionId)) }));
  return actions.map((dataAction) => {
    const grantedBy = applying
      .filter(({ role }) => role && grants(role, dataAction))
      .map(({ assignment, role }) => ({ assignmentId: assignment.id, role: role!.name, scope: assignment.scope }));
    return { dataAction, granted: grantedBy.length > 0, grantedBy };
  });
}

/**
 * Whether a role assignment at `assignmentScope` applies to `resourceId`: the same scope or one above it
 * (subscription → resource group → resource → child such as a queue), by whole segments, case-insensitively.
 */
export function scopeContains(assignmentScope: string, resourceId: string): boolean {
  const outer = segments(assignmentScope);
  const inner = segments(resourceId);
  return outer.length <= inner.length && outer.every((segment, i) => segment === inner[i]);
}

function segments(scope: string): string[] {
  return scope.toLowerCase().split('/').filter(Boolean);
}

function roleGuid(roleDefinitionId: string): string {
  return roleDefinitionId.split('/').pop()!.toLowerCase();
}
