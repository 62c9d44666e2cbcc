import { principalTypeOf } from '../entra/directory.js';
import { faultRoutes } from '../faults/fault-routes.js';
import type { LocalAzure } from '../local-azure.js';
import { ArmError } from '../management/arm-error.js';
import { listLimit } from '../management/list-query.js';
import { controlPlaneActions as actions, ownerOnly } from '../management/control-plane-actions.js';
import type { AccessCheck } from '../management/control-plane-guard.js';
import { ManagementReply, objectBody, type ManagementRequest, type ManagementRoute } from '../management/management-api.js';
import { scopeMustExist } from '../management/role-assignments-api.js';
import { builtInRoles, findRole } from '../rbac/built-in-roles.js';
import type { RoleAssignmentFilter } from '../rbac/role-assignments.js';
import { deterministicGuid } from '../util/ids.js';

/**
 * The admin routes the CLI calls (`npm run local-azure -- …`), on the management listener beside the ARM-shaped
 * API: resources, identities and hosts, role assignments by assignee name, sign-in and authorization logs, key
 * rollover, and fault injection (faults/fault-routes.ts). Each is authorized like ARM (see
 * {@link controlPlaneActions}); key rollover and fault injection need Owner of the subscription. Nothing here shows
 * a secret: the hosts list has no identity header and no IMDS capability (they are in each host's env file only).
 */
export function adminRoutes(azure: LocalAzure): ManagementRoute[] {
  const subscription = `/subscriptions/${azure.directory.subscriptionId}`;
  const resourceGroup = azure.directory.resourceGroupId;
  const read = (action: string, scope: string): AccessCheck[] => [{ action, scope }];
  // The id of the assignment a create makes (ARM checks a write at the assignment itself).
  const assignmentId = (filter: Required<Pick<RoleAssignmentFilter, 'principalId' | 'role' | 'scope'>>): string =>
    azure.roleAssignments.find(filter.principalId, filter.role, filter.scope)?.id ??
    `${filter.scope}/providers/Microsoft.Authorization/roleAssignments/${deterministicGuid(filter.scope, filter.principalId, filter.role.id)}`;

  return [
    {
      method: 'GET',
      pattern: /^\/tenant$/,
      access: () => read(actions.subscriptionRead, subscription),
      handle: () => ({
        tenantId: azure.directory.tenantId,
        subscriptionId: azure.directory.subscriptionId,
        resourceGroup,
        authority: azure.endpoints.login,
      }),
    },
    {
      method: 'GET',
      pattern: /^\/resources$/,
      access: () => read(actions.resourcesRead, resourceGroup),
      handle: () => azure.directory.resources().map((r) => ({ ...r, endpoint: azure.resourceEndpoint(r.key) })),
    },
    {
      method: 'GET',
      pattern: /^\/identities$/,
      access: () => read(actions.identitiesRead, resourceGroup),
      handle: () => azure.directory.identities(),
    },
    {
      method: 'GET',
      pattern: /^\/hosts$/,
      access: () => read(actions.sitesRead, resourceGroup),
      handle: () =>
        azure.directory.hosts().map((host) => ({
          name: host.name,
          systemAssigned: host.systemAssigned ?? null,
          userAssigned: host.userAssigned,
          identityEndpoint: azure.identityEndpointsOf(host.name).identityEndpoint,
          envFile: azure.home.envFile(host.name),
        })),
    },
    {
      method: 'GET',
      pattern: /^\/roleDefinitions$/,
      access: () => read(actions.roleDefinitionsRead, subscription),
      handle: () => builtInRoles,
    },
    {
      method: 'GET',
      pattern: /^\/roleAssignments$/,
      access: ({ url }) => read(actions.roleAssignmentsRead, assignmentFilter(azure, url.searchParams).scope ?? subscription),
      handle: ({ url }) => azure.roleAssignments.list(assignmentFilter(azure, url.searchParams)),
    },
    {
      method: 'POST',
      pattern: /^\/roleAssignments$/,
      access: async (request) => [{ action: actions.roleAssignmentsWrite, scope: assignmentId(await createFilter(azure, request)) }],
      handle: async (request) => {
        const filter = await createFilter(azure, request);
        // As az's create, which PUTs through ARM: a scope that names nothing is refused, a deleted queue's included.
        scopeMustExist(azure.directory, filter.scope, (id) => azure.childResourceIds(id));
        const principal = azure.directory.findPrincipal(filter.principalId)!;
        // az's --assignee-principal-type (any case, as az takes it), checked as ARM checks the principalType of a PUT.
        const { assigneePrincipalType: stated } = await objectBody(request);
        if (typeof stated === 'string' && stated.toLowerCase() !== principalTypeOf(principal).toLowerCase()) {
          throw new ArmError(400, 'UnmatchedPrincipalType', `The PrincipalId '${principal.principalId}' has type '${principalTypeOf(principal)}', which is different from specified PrincipalType '${stated}'.`);
        }
        return new ManagementReply(
          201,
          azure.roleAssignments.create({ ...filter, principalType: principalTypeOf(principal), source: 'cli', createdBy: request.caller.principalId }),
        );
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/roleAssignments$/,
      // Every assignment the request would delete must be deletable by the caller, or nothing is deleted.
      access: ({ url }) => {
        const victims = deletionVictims(azure, url.searchParams);
        const scope = url.searchParams.get('id') ?? assignmentFilter(azure, url.searchParams).scope ?? subscription;
        return victims.length
          ? victims.map((victim) => ({ action: actions.roleAssignmentsDelete, scope: victim.id }))
          : [{ action: actions.roleAssignmentsDelete, scope }];
      },
      handle: ({ url }) => {
        const id = url.searchParams.get('id');
        return id ? azure.roleAssignments.delete({ id }) : azure.roleAssignments.delete(assignmentFilter(azure, url.searchParams));
      },
    },
    {
      method: 'POST',
      pattern: /^\/roleAssignments:reset$/,
      access: () => [
        { action: actions.roleAssignmentsDelete, scope: resourceGroup },
        { action: actions.roleAssignmentsWrite, scope: resourceGroup },
      ],
      handle: () => azure.applyAccessFile(),
    },
    {
      method: 'GET',
      pattern: /^\/logs\/signIns$/,
      access: () => read(actions.logsRead, subscription),
      handle: ({ url }) => azure.auditLog.signIns(logQuery(url)),
    },
    {
      method: 'GET',
      pattern: /^\/logs\/authorizations$/,
      access: () => read(actions.logsRead, subscription),
      handle: ({ url }) => azure.auditLog.authorizations(logQuery(url)),
    },
    {
      method: 'POST',
      pattern: /^\/signingKeys:rotate$/,
      access: () => [{ action: actions.signingKeysRotate, scope: subscription, onlyRoles: ownerOnly }],
      handle: async () => ({ kid: await azure.keys.rotate(), keys: azure.keys.jwks().keys.map((k) => k.kid) }),
    },
    ...faultRoutes(azure.faults, azure.directory.subscriptionId),
  ];
}

/** The assignment a `role assignment create` asks for (`assignee`, `role`, `scope` in the JSON body, all required). */
async function createFilter(azure: LocalAzure, request: ManagementRequest): Promise<Required<Pick<RoleAssignmentFilter, 'principalId' | 'role' | 'scope'>>> {
  const body = await objectBody(request);
  const params = new URLSearchParams(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const missing = [!params.get('assignee') && '--assignee', !params.get('role') && '--role', !params.get('scope') && '--scope'].filter(Boolean);
  if (missing.length) throw new ArmError(400, 'MissingArgument', `the following arguments are required: ${missing.join(', ')}`);
  return assignmentFilter(azure, params) as Required<Pick<RoleAssignmentFilter, 'principalId' | 'role' | 'scope'>>;
}

function deletionVictims(azure: LocalAzure, params: URLSearchParams) {
  const id = params.get('id');
  if (id) return azure.roleAssignments.all().filter((a) => a.id.toLowerCase() === id.toLowerCase());
  const filter = assignmentFilter(azure, params);
  if (!filter.principalId && !filter.role && !filter.scope) {
    throw new ArmError(400, 'MissingFilter', 'Give --ids, or at least one of --assignee, --role, --scope.');
  }
  return azure.roleAssignments.list(filter);
}

function assignmentFilter(azure: LocalAzure, params: URLSearchParams): RoleAssignmentFilter {
  const assignee = params.get('assignee') ?? undefined;
  const roleName = params.get('role') ?? undefined;
  const scope = params.get('scope') ?? undefined;
  const principal = assignee ? azure.directory.findPrincipal(assignee) : undefined;
  if (assignee && !principal) {
    throw new ArmError(
      400,
      'PrincipalNotFound',
      `Cannot find a managed identity or user with name, client id, UPN or object id '${assignee}'. See \`${azure.home.command('npm run local-azure -- identity list')}\`.`,
    );
  }
  const role = roleName ? findRole(roleName) : undefined;
  if (roleName && !role) {
    throw new ArmError(400, 'RoleDefinitionNotFound', `Role '${roleName}' doesn't exist. Known roles: ${builtInRoles.map((r) => r.name).join(', ')}.`);
  }
  return {
    ...(principal ? { principalId: principal.principalId } : {}),
    ...(role ? { role } : {}),
    ...(scope ? { scope: azure.directory.resolveScope(scope) } : {}),
  };
}

function logQuery(url: URL) {
  const principal = url.searchParams.get('principal');
  const since = url.searchParams.get('since');
  return { limit: listLimit(url), ...(principal ? { principal } : {}), ...(since ? { since } : {}) };
}
