import type { Directory } from '../entra/directory.js';
import { builtInRoles, findRole, type RoleDefinition } from '../rbac/built-in-roles.js';
import type { RoleAssignment, RoleAssignmentStore } from '../rbac/role-assignments.js';
import { normalizeScope, scopeContains } from '../rbac/scope.js';
import { isGuid } from '../util/ids.js';
import { ArmError } from './arm-error.js';
import { controlPlaneActions as actions } from './control-plane-actions.js';
import type { AccessCheck } from './control-plane-guard.js';
import { ManagementReply, type ManagementRequest, type ManagementRoute } from './management-api.js';

/** API versions of `Microsoft.Authorization` the local ARM answers (the shape is 2022-04-01's for all). */
export const authorizationApiVersions = ['2015-07-01', '2018-01-01-preview', '2018-09-01-preview', '2020-04-01-preview', '2020-10-01-preview', '2022-01-01-preview', '2022-04-01'];

const provider = String.raw`\/providers\/Microsoft\.Authorization`;
const scopePart = String.raw`(?<scope>(?:\/[^/]+)*?)`;
const paths = {
  assignment: new RegExp(`^${scopePart}${provider}\\/roleAssignments\\/(?<name>[^/]+)$`, 'i'),
  assignments: new RegExp(`^${scopePart}${provider}\\/roleAssignments$`, 'i'),
  definition: new RegExp(`^${scopePart}${provider}\\/roleDefinitions\\/(?<id>[^/]+)$`, 'i'),
  definitions: new RegExp(`^${scopePart}${provider}\\/roleDefinitions$`, 'i'),
};

/**
 * `Microsoft.Authorization` in ARM's REST shape, so `az rest` calls and the ARM SDK (`@azure/arm-authorization`)
 * work against the local Azure:
 * - `PUT|GET|DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{guid}` at any scope in the local
 *   subscription that exists (subscription, resource group, resource, Service Bus entity: see
 *   {@link scopeMustExist}); PUT answers 201 (200 when the
 *   same assignment is PUT again), DELETE 200 with the assignment or 204 when there is none;
 * - `GET {scope}/providers/Microsoft.Authorization/roleAssignments` with `$filter` `atScope()`,
 *   `principalId eq '{id}'`, `assignedTo('{id}')` (and `atScope() and assignedTo('{id}')`); without a filter
 *   it lists the assignments at, above and below the scope;
 * - `GET {scope}/providers/Microsoft.Authorization/roleDefinitions[/{guid}]`, `$filter=roleName eq '…'`.
 *
 * Writes need `Microsoft.Authorization/roleAssignments/write` (`/delete`) at the assignment, reads
 * `…/read` at the scope. Refusals are ARM's: 409 `RoleAssignmentExists`, 400 `PrincipalNotFound`,
 * `RoleDefinitionDoesNotExist`, `RoleAssignmentUpdateNotPermitted`, `UnmatchedPrincipalType`, 404
 * `RoleAssignmentNotFound`, `ResourceGroupNotFound`, `ResourceNotFound`.
 */
export function roleAssignmentsApi(directory: Directory, store: RoleAssignmentStore, childResourceIds: ChildResourceIds = () => undefined): ManagementRoute[] {
  const subscription = `/subscriptions/${directory.subscriptionId}`;
  const definitionId = (role: RoleDefinition): string => `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${role.id}`;
  const idOf = (request: ManagementRequest): string => `${scopeOf(request)}/providers/Microsoft.Authorization/roleAssignments/${request.params.name}`;
  const check = (action: string, scope: string): AccessCheck[] => [{ action, scope }];

  const renderAssignment = (a: RoleAssignment) => ({
    id: a.id,
    type: 'Microsoft.Authorization/roleAssignments',
    name: a.name,
    properties: {
      roleDefinitionId: `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${a.roleDefinitionId}`,
      principalId: a.principalId,
      principalType: a.principalType,
      scope: a.scope,
      condition: null,
      conditionVersion: null,
      createdOn: a.createdOn,
      updatedOn: a.updatedOn,
      createdBy: a.createdBy ?? null,
      updatedBy: a.updatedBy ?? null,
      delegatedManagedIdentityResourceId: null,
      description: a.description ?? null,
    },
  });
  const renderDefinition = (role: RoleDefinition) => ({
    id: definitionId(role),
    type: 'Microsoft.Authorization/roleDefinitions',
    name: role.id,
    properties: {
      roleName: role.name,
      type: 'BuiltInRole',
      description: role.description,
      assignableScopes: ['/'],
      permissions: [{ actions: role.actions, notActions: role.notActions, dataActions: role.dataActions, notDataActions: role.notDataActions }],
      createdOn: null,
      updatedOn: null,
      createdBy: null,
      updatedBy: null,
    },
  });
  return [
    {
      method: 'PUT',
      pattern: paths.assignment,
      access: (request) => versioned(request, check(actions.roleAssignmentsWrite, idOf(request))),
      handle: async (request) => {
        const scope = scopeOf(request);
        scopeMustExist(directory, scope, childResourceIds);
        const name = request.params.name!.toLowerCase();
        if (!isGuid(name)) throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${request.params.name}' is not valid. The role assignment ID must be a GUID.`);
        const wanted = parseProperties(await request.body(), name);
        const role = findRole(wanted.roleDefinitionGuid);
        if (!role) throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${wanted.roleDefinitionGuid}' does not exist.`);
        const principal = directory.findPrincipal(wanted.principalId);
        if (!principal || principal.principalId !== wanted.principalId) {
          throw new ArmError(
            400,
            'PrincipalNotFound',
            `Principal ${wanted.principalId} does not exist in the directory ${directory.tenantId}. Check that you have the correct principal ID. ` +
              'If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. ' +
              'In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype',
          );
        }
        const principalType = principal.kind === 'user' ? 'User' : 'ServicePrincipal';
        if (wanted.principalType && wanted.principalType !== principalType) {
          throw new ArmError(400, 'UnmatchedPrincipalType', `The PrincipalId '${principal.principalId}' has type '${principalType}' , which is different from specified PrincipalType '${wanted.principalType}'.`);
        }
        const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`;
        const sameName = store.all().find((a) => a.name === name);
        if (sameName) {
          if (sameName.id.toLowerCase() !== id.toLowerCase() || sameName.principalId !== principal.principalId || sameName.roleDefinitionId !== role.id) {
            throw new ArmError(400, 'RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
          }
          return renderAssignment(store.updateDescription(sameName.id, wanted.description, request.caller.principalId));
        }
        const existing = store.find(principal.principalId, role, scope);
        if (existing) throw new ArmError(409, 'RoleAssignmentExists', `The role assignment already exists. The ID of the existing role assignment is ${existing.name}.`);
        const created = store.create({
          name,
          principalId: principal.principalId,
          principalType,
          role,
          scope,
          source: 'api',
          ...(wanted.description ? { description: wanted.description } : {}),
          createdBy: request.caller.principalId,
        });
        return new ManagementReply(201, renderAssignment(created));
      },
    },
    {
      method: 'GET',
      pattern: paths.assignment,
      access: (request) => versioned(request, check(actions.roleAssignmentsRead, idOf(request))),
      handle: (request) => {
        scopeMustExist(directory, scopeOf(request));
        const assignment = store.get(idOf(request));
        if (!assignment) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${request.params.name}' is not found.`);
        return renderAssignment(assignment);
      },
    },
    {
      method: 'DELETE',
      pattern: paths.assignment,
      access: (request) => versioned(request, check(actions.roleAssignmentsDelete, idOf(request))),
      handle: (request) => {
        scopeMustExist(directory, scopeOf(request));
        const [deleted] = store.delete({ id: idOf(request) });
        return deleted ? renderAssignment(deleted) : new ManagementReply(204);
      },
    },
    {
      method: 'GET',
      pattern: paths.assignments,
      access: (request) => versioned(request, check(actions.roleAssignmentsRead, scopeOf(request))),
      handle: (request) => {
        const scope = scopeOf(request);
        scopeMustExist(directory, scope);
        const filter = parseAssignmentFilter(request.url.searchParams.get('$filter'));
        const applies = (a: RoleAssignment): boolean =>
          scopeContains(a.scope, scope) || (!filter.atScope && scopeContains(scope, a.scope));
        return { value: store.all().filter((a) => applies(a) && (!filter.principalId || a.principalId === filter.principalId)).map(renderAssignment) };
      },
    },
    {
      method: 'GET',
      pattern: paths.definition,
      access: (request) => versioned(request, check(actions.roleDefinitionsRead, scopeOf(request, subscription))),
      handle: (request) => {
        const id = request.params.id!.toLowerCase();
        const role = isGuid(id) ? findRole(id) : undefined;
        if (!role) throw new ArmError(404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${request.params.id}' does not exist.`);
        return renderDefinition(role);
      },
    },
    {
      method: 'GET',
      pattern: paths.definitions,
      access: (request) => versioned(request, check(actions.roleDefinitionsRead, scopeOf(request, subscription))),
      handle: (request) => {
        const filter = request.url.searchParams.get('$filter');
        const byName = filter?.match(/^\s*roleName\s+eq\s+'(?<name>[^']+)'\s*$/i)?.groups?.name;
        const byType = filter?.match(/^\s*type\s+eq\s+'(?<type>BuiltInRole|CustomRole)'\s*$/i)?.groups?.type;
        if (filter && !byName && !byType) {
          throw new ArmError(400, 'InvalidFilterInQueryString', `The filter '${filter}' is not supported. Use roleName eq '<name>' or type eq 'BuiltInRole'.`);
        }
        const roles = byName ? builtInRoles.filter((r) => r.name.toLowerCase() === byName.toLowerCase()) : byType?.toLowerCase() === 'customrole' ? [] : builtInRoles;
        return { value: roles.map(renderDefinition) };
      },
    },
  ];
}

/**
 * The ARM ids of the child resources a top-level resource holds (a namespace's queues, topics and subscriptions), or
 * undefined when the local Azure does not model that resource's children (they are then taken on trust).
 */
export type ChildResourceIds = (resourceId: string) => readonly string[] | undefined;

/**
 * 404s for a scope that names nothing in the local subscription, checked after authorization, as ARM does: an
 * unknown subscription, resource group or resource, and — given `childResourceIds`, as for a new assignment — a
 * child resource (`…/namespaces/sb/queues/q`) that does not exist. Reads and deletes leave children unchecked: an
 * assignment left at a deleted queue must stay listable and removable.
 *
 * @throws {ArmError} 404 `SubscriptionNotFound`, `ResourceGroupNotFound`, `ResourceNotFound`; 400 `InvalidScope`.
 */
export function scopeMustExist(directory: Directory, scope: string, childResourceIds?: ChildResourceIds): void {
  const subscription = `/subscriptions/${directory.subscriptionId}`;
  const segments = scope.split('/').filter(Boolean);
  const [, subscriptionId, resourceGroups, resourceGroupName, providers] = segments;
  if (subscriptionId?.toLowerCase() !== directory.subscriptionId) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`);
  if (segments.length === 2) return;
  if (resourceGroups?.toLowerCase() !== 'resourcegroups' || !resourceGroupName) throw new ArmError(400, 'InvalidScope', `The scope '${scope}' is not a valid ARM scope.`);
  if (`${subscription}/resourceGroups/${resourceGroupName}`.toLowerCase() !== directory.resourceGroupId.toLowerCase()) {
    throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${resourceGroupName}' could not be found.`);
  }
  if (segments.length === 4) return;
  if (providers?.toLowerCase() !== 'providers' || segments.length < 8) throw new ArmError(400, 'InvalidScope', `The scope '${scope}' is not a valid ARM scope.`);
  const notFound = (to: number): ArmError =>
    new ArmError(404, 'ResourceNotFound', `The Resource '${segments.slice(5, to).join('/')}' under resource group '${resourceGroupName}' was not found.`);
  const resourceId = `/${segments.slice(0, 8).join('/')}`;
  if (!directory.resourceIds().some((id) => id.toLowerCase() === resourceId.toLowerCase())) throw notFound(8);
  if (segments.length === 8 || !childResourceIds) return;
  const children = childResourceIds(resourceId);
  if (children && !children.some((id) => id.toLowerCase() === `/${segments.join('/')}`.toLowerCase())) throw notFound(segments.length);
}

/** The request's scope (normalized), or `fallback` for the tenant root. @throws {ArmError} 400 for a scope outside ARM's shape. */
function scopeOf(request: ManagementRequest, fallback?: string): string {
  const raw = request.params.scope ?? '';
  if (!raw || raw === '/') {
    if (fallback) return fallback;
    throw new ArmError(400, 'InvalidScope', "Role assignments at the root scope '/' are not supported by the local Azure; use /subscriptions/{id} or a scope beneath it.");
  }
  const scope = normalizeScope(raw);
  if (!/^\/subscriptions\/[^/]+(\/.*)?$/i.test(scope)) throw new ArmError(400, 'InvalidScope', `The scope '${raw}' is not a valid ARM scope.`);
  return scope;
}

/** `checks`, once the request's api-version is one the local ARM answers. */
function versioned(request: ManagementRequest, checks: AccessCheck[]): AccessCheck[] {
  checkApiVersion(request);
  return checks;
}

function checkApiVersion(request: ManagementRequest): void {
  const version = request.url.searchParams.get('api-version');
  if (!version) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
  if (!authorizationApiVersions.includes(version)) {
    throw new ArmError(
      400,
      'NoRegisteredProviderFound',
      `No registered resource provider found for API version '${version}' and namespace 'Microsoft.Authorization'. The supported api-versions are '${authorizationApiVersions.join(', ')}'.`,
    );
  }
}

/** The properties of a role assignment PUT. */
function parseProperties(body: unknown, name: string): { roleDefinitionGuid: string; principalId: string; principalType?: string; description?: string } {
  const invalid = (what: string): ArmError =>
    new ArmError(400, 'InvalidCreateRoleAssignmentRequest', `The request to create role assignment '${name}' is not valid. ${what}`);
  const properties = (body as { properties?: Record<string, unknown> } | null)?.properties;
  if (!properties || typeof properties !== 'object') throw invalid("The body must be {\"properties\": {\"roleDefinitionId\": …, \"principalId\": …}}.");
  const { roleDefinitionId, principalId, principalType, description, condition } = properties;
  if (typeof roleDefinitionId !== 'string') throw invalid("'properties.roleDefinitionId' is required.");
  if (typeof principalId !== 'string' || !isGuid(principalId)) throw invalid("'properties.principalId' is required and must be the principal's object id (a GUID).");
  if (condition !== undefined && condition !== null) throw invalid('Role assignment conditions (ABAC) are not supported by the local Azure: an unchecked condition would grant more than asked.');
  if (principalType !== undefined && !['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'].includes(String(principalType))) {
    throw invalid(`'properties.principalType' must be User, Group, ServicePrincipal or ForeignGroup, not '${String(principalType)}'.`);
  }
  const guid = roleDefinitionId.match(/^(?:\/.*)?\/providers\/Microsoft\.Authorization\/roleDefinitions\/(?<id>[0-9a-fA-F-]{36})$/i)?.groups?.id;
  if (!guid) throw invalid(`'properties.roleDefinitionId' must be a role definition id such as /subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid}, not '${roleDefinitionId}'.`);
  return {
    roleDefinitionGuid: guid.toLowerCase(),
    principalId: principalId.toLowerCase(),
    ...(principalType ? { principalType: String(principalType) } : {}),
    ...(typeof description === 'string' && description ? { description } : {}),
  };
}

/** `$filter` of a role assignment list: `atScope()`, `principalId eq '{id}'`, `assignedTo('{id}')`, joined with `and`. */
function parseAssignmentFilter(filter: string | null): { atScope: boolean; principalId?: string } {
  if (!filter?.trim()) return { atScope: false };
  let atScope = false;
  let principalId: string | undefined;
  let principalEq = false;
  for (const clause of filter.trim().split(/\s+and\s+/i)) {
    const assigned = clause.match(/^assignedTo\('(?<id>[0-9a-fA-F-]{36})'\)$/i)?.groups?.id;
    const eq = clause.match(/^principalId\s+eq\s+'(?<id>[0-9a-fA-F-]{36})'$/i)?.groups?.id;
    if (/^atScope\(\)$/i.test(clause)) atScope = true;
    else if (assigned || eq) {
      if (principalId) throw new ArmError(400, 'InvalidFilterInQueryString', `The filter '${filter}' names more than one principal.`);
      principalId = (assigned ?? eq)!.toLowerCase();
      principalEq = !!eq;
    } else {
      throw new ArmError(400, 'InvalidFilterInQueryString', `The filter '${filter}' is not supported. Use atScope(), principalId eq '{objectId}' or assignedTo('{objectId}').`);
    }
  }
  if (atScope && principalEq) throw new ArmError(400, 'InvalidFilterInQueryString', "atScope() cannot be combined with principalId eq; use atScope() and assignedTo('{objectId}').");
  return { atScope, ...(principalId ? { principalId } : {}) };
}
