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

/** The commands that grant a role, for `az` and for the local Azure's CLI. */
export interface RoleAssignmentCommands {
  /** `az role assignment create …`. */
  az: string;
  /** The same arguments for the local Azure's CLI, which accepts az's own: `npm run local-azure -- role assignment create …`. */
  localAzure: string;
}

/**
 * The command that grants `role` (a display name) to the principal `objectId` on `scope`. The principal is named by
 * object id and type, so `az` asks Microsoft Graph nothing (a managed identity's object id is enough).
 *
 * @example
 * roleAssignmentCreateCommands(principalId, 'ServicePrincipal', 'Reader', resourceGroupId).az
 * // 'az role assignment create --assignee-object-id … --assignee-principal-type ServicePrincipal --role "Reader" --scope /subscriptions/…'
 */
export function roleAssignmentCreateCommands(objectId: string, principalType: 'ServicePrincipal' | 'User' | 'Group', role: string, scope: string): RoleAssignmentCommands {
  const args = `role assignment create --assignee-object-id ${objectId} --assignee-principal-type ${principalType} --role "${role}" --scope ${scope}`;
  return { az: `az ${args}`, localAzure: `npm run local-azure -- ${args}` };
}

/**
 * The path below its resource of the scope a Service Bus entity or an access-file entry names: `queues/q`,
 * `topics/t`, `topics/t/subscriptions/s`, or `''` for the resource itself.
 */
export function entityScopePath(entity: { queue?: string; topic?: string; subscription?: string }): string {
  if (entity.queue) return `queues/${entity.queue}`;
  if (entity.topic && entity.subscription) return `topics/${entity.topic}/subscriptions/${entity.subscription}`;
  if (entity.topic) return `topics/${entity.topic}`;
  return '';
}

/**
 * The ARM scope of an entity (or an access-file entry) of the resource `resourceId`.
 *
 * @example entityScope(namespaceId, { topic: 'events', subscription: 'vision' }) // `${namespaceId}/topics/events/subscriptions/vision`
 */
export function entityScope(resourceId: string, entity: { queue?: string; topic?: string; subscription?: string }): string {
  const path = entityScopePath(entity);
  return path ? `${resourceId}/${path}` : resourceId;
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
