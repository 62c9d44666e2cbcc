import { builtInRoles, effectiveDataActions, entityScope, roleAssignmentCreateCommands, type AssignmentRef, type RoleAssignmentCommands, type RoleDefinition } from '@keyless/contracts';
import { ArmAuthorizationReader, ArmReadError, type ArmReadFailure } from './arm-authorization.js';
import { localAzureFix, resourceIdVariables, type AccessResource, type DoctorOptions } from './doctor-options.js';

/** One entry of `infra/access.json`. */
export interface AccessFileEntry {
  role: string;
  roleDefinitionId: string;
  resource: AccessResource;
  queue?: string;
  topic?: string;
  subscription?: string;
  purpose: string;
}

/**
 * A data action on one scope, compared with what `infra/access.json` grants there.
 * - `ok`: held, and access.json grants it.
 * - `missing`: access.json grants it, the identity does not hold it (the fix says which role to assign where).
 * - `not-in-access-json`: held through an assignment access.json does not make (drift: remove it, or add it there).
 * - `not-granted`: neither held nor granted by access.json.
 * - `not-read`: the identity's role assignments here could not be read (see {@link CheckAccessReport.unread}).
 */
export type CheckedStatus = 'ok' | 'missing' | 'not-in-access-json' | 'not-granted' | 'not-read';

/** One row of the check-access view: a data action on a scope, who grants it, and what access.json says. */
export interface CheckedDataAction {
  dataAction: string;
  status: CheckedStatus;
  /** Whether the identity holds it here; absent when its assignments could not be read. */
  granted?: boolean;
  /** Every assignment that grants it: its id, role, and the scope it is made at (this one or one above). */
  grantedBy: { assignmentId: string; role: string; scope: string }[];
  /** The access.json entries that grant it here: role, the scope they name, and why. */
  expectedBy: { role: string; scope: string; purpose: string }[];
  /** The data-plane probes that exercised this data action on this scope, and what they found. */
  probes: { check: string; status: string }[];
  /** For `missing`: the `az` command that grants the role access.json names. */
  fix?: string;
  /** The same command for the local Azure's CLI, when running against it. */
  localFix?: string;
}

/** The check-access view of one scope of access.json. */
export interface ScopeAccess {
  scope: string;
  resource: AccessResource;
  /** What the scope is, e.g. `serviceBus queue replies`. */
  label: string;
  /** Whether the identity's role assignments that apply here were read. */
  read: boolean;
  /** Every data action the Keyless data planes check, as the portal's "check access" lists them. */
  dataActions: CheckedDataAction[];
}

/** A resource where the role assignments could not be read. */
export interface UnreadResource {
  resource: AccessResource;
  scope: string;
  failure: ArmReadFailure;
  /** What to do, unless it is a missing read right (that one is {@link CheckAccessReport.readHelp}). */
  fix?: string;
}

/** How to get the whole view when the identity may not read its own role assignments. */
export interface ReadHelp {
  /** Why the read was refused. */
  why: string;
  /** Grant the identity Reader on the resource group (read-only, no data action). */
  grantReader: RoleAssignmentCommands;
  /** Or someone who may read assignments lists them. */
  listAssignments: RoleAssignmentCommands;
}

/** The check-access part of the doctor's report (`--check-access`). */
export interface CheckAccessReport {
  /** The object id the assignments were read for (from the identity's ARM token). */
  principalId?: string;
  /** The ARM endpoint read. */
  endpoint?: string;
  /** `complete`: every configured resource read; `partial`: some; `none`: nothing read (or nothing configured). */
  read: 'complete' | 'partial' | 'none';
  /** Where the assignments could not be read, and why. */
  unread: UnreadResource[];
  /** Present when a read was refused for lack of rights. */
  readHelp?: ReadHelp;
  /** access.json's resources whose ARM id variable is not set: nothing was read there. */
  notConfigured: { resource: AccessResource; variable: string; roles: string[] }[];
  scopes: ScopeAccess[];
  /**
   * Every role assignment read that applies to the identity, and whether access.json makes it. `principalId` is the
   * holder: the identity, or a group it is in.
   */
  assignments: { id: string; role: string; scope: string; principalId: string; inAccessJson: boolean }[];
  /** Anything else worth knowing (a role definition taken from the built-in table, …). */
  notes: string[];
  /** Rows by status, over the scopes (`not-granted` rows are not counted). */
  counts: { ok: number; missing: number; notInAccessJson: number; notRead: number };
}

/** What {@link checkAccess} works from. */
export interface CheckAccessInput {
  options: DoctorOptions;
  access: readonly AccessFileEntry[];
  /** The object id of the identity (from its ARM token), when known. */
  principalId?: string;
  /** The identity's ARM token; absent when it could not be had (then `tokenProblem` says why). */
  token?: () => Promise<string>;
  tokenProblem?: { detail?: string; fix?: string };
  /** The probes' results (scope and data action of each), shown beside the rows they exercised. */
  probes: readonly { check: string; status: string; scope?: string; dataAction?: string }[];
}

/**
 * "Check access", as the portal's IAM page shows it, for the identity the doctor runs as: on every scope of
 * access.json (resolved with the resource ids configured in the environment) its effective data actions and the
 * assignments that grant each, computed by `effectiveDataActions` of `@keyless/contracts` (the portal's own) from the
 * role assignments and definitions read through ARM with the identity's token — and, beside it, what access.json
 * grants there, action by action.
 * Rules:
 * - Assignments are listed once per resource (`assignedTo`: at, above and beneath it); a resource that cannot be read
 *   leaves its scopes `not-read`, the others are still shown.
 * - A role definition is read at the scope where it is assigned; if that fails, a built-in role (same GUID in every
 *   tenant) comes from the built-in table, with a note; an unknown role then grants nothing.
 * - Never throws for what ARM answers or fails to answer.
 */
export async function checkAccess(input: CheckAccessInput): Promise<CheckAccessReport> {
  const { options, access, principalId } = input;
  const { resourceIds } = options;
  const endpoint = options.resourceManagerEndpoint;
  const used = [...new Set(access.map((entry) => entry.resource))];
  const configured = used.filter((resource) => resourceIds[resource]);
  const notConfigured = used
    .filter((resource) => !resourceIds[resource])
    .map((resource) => ({ resource, variable: resourceIdVariables[resource], roles: [...new Set(access.filter((e) => e.resource === resource).map((e) => e.role))] }));

  // access.json's grants, as assignments of this identity at their scopes.
  const expected: ExpectedAssignment[] = access.flatMap((entry, i) => {
    const resourceId = resourceIds[entry.resource];
    return resourceId ? [{ id: `infra/access.json assignments[${i}]`, principalId: principalId ?? '', roleDefinitionId: entry.roleDefinitionId, scope: entityScope(resourceId, entry), entry }] : [];
  });

  const { reader, read, unread } = await readAssignments(input, configured);
  // `assignedTo` lists the identity's own assignments and those of groups it is in: all of them apply to it.
  const holders = distinctById([...read.values()].flat());
  const assignments = holders.map((a) => ({ ...a, principalId: principalId! }));
  const { roles, notes } = await resolveRoles(reader, read, resourceIds);

  const scopes = distinctScopes(expected).map(({ scope, entry }) => compareScope(input, scope, entry, read.has(entry.resource), assignments, roles, expected));
  const rows = scopes.flatMap((s) => s.dataActions);
  const resourceGroup = configured.map((r) => resourceGroupOf(resourceIds[r]!)).find((id) => id !== undefined);
  const assignee = principalId ?? `<object id of ${options.clientId}>`;
  const grantReader = roleAssignmentCreateCommands(assignee, 'ServicePrincipal', 'Reader', resourceGroup ?? '<resource group id>');
  return {
    ...(principalId ? { principalId } : {}),
    ...(endpoint ? { endpoint } : {}),
    read: read.size === 0 ? 'none' : unread.length ? 'partial' : 'complete',
    unread,
    ...(unread.some((u) => u.failure.kind === 'forbidden')
      ? {
          readHelp: {
            why:
              'Reading role assignments is a control-plane action (Microsoft.Authorization/roleAssignments/read). A managed identity that holds only ' +
              'data-plane roles usually may not perform it; the data-plane probes show what it can do all the same.',
            grantReader: { ...grantReader, localAzure: localAzureFix(options, grantReader.localAzure) },
            listAssignments: {
              az: `az role assignment list --assignee ${assignee} --all --output table`,
              localAzure: localAzureFix(options, `npm run local-azure -- role assignment list --assignee ${assignee} --all`),
            },
          },
        }
      : {}),
    notConfigured,
    scopes,
    assignments: holders.map((a) => ({
      id: a.id,
      role: roles.find((r) => r.id === roleGuid(a.roleDefinitionId))?.name ?? roleGuid(a.roleDefinitionId),
      scope: a.scope,
      principalId: a.principalId,
      inAccessJson: a.principalId.toLowerCase() === principalId?.toLowerCase() && expected.some((e) => roleGuid(e.roleDefinitionId) === roleGuid(a.roleDefinitionId) && e.scope.toLowerCase() === a.scope.toLowerCase()),
    })),
    notes,
    counts: {
      ok: rows.filter((r) => r.status === 'ok').length,
      missing: rows.filter((r) => r.status === 'missing').length,
      notInAccessJson: rows.filter((r) => r.status === 'not-in-access-json').length,
      notRead: rows.filter((r) => r.status === 'not-read' && r.expectedBy.length > 0).length,
    },
  };
}

/** An access.json entry as an assignment of the identity at its scope. */
type ExpectedAssignment = AssignmentRef & { entry: AccessFileEntry };

/** Lists the identity's assignments at each configured resource; what cannot be read is in `unread`, with why. */
async function readAssignments(
  input: CheckAccessInput,
  configured: readonly AccessResource[],
): Promise<{ reader?: ArmAuthorizationReader; read: Map<AccessResource, AssignmentRef[]>; unread: UnreadResource[] }> {
  const { options, principalId } = input;
  const endpoint = options.resourceManagerEndpoint;
  const read = new Map<AccessResource, AssignmentRef[]>();
  const unread: UnreadResource[] = [];
  const none = (failure: ArmReadFailure, fix: string | undefined) => {
    for (const resource of configured) unread.push({ resource, scope: options.resourceIds[resource]!, failure, ...optionalFix(fix) });
    return { read, unread };
  };
  if (!endpoint) {
    return none(
      { kind: 'failed', code: 'EndpointNotConfigured', message: 'AZURE_RESOURCE_MANAGER_ENDPOINT is not set, so there is no Azure Resource Manager to ask.' },
      "Set AZURE_RESOURCE_MANAGER_ENDPOINT (the local Azure's env files carry it).",
    );
  }
  if (!input.token || !principalId) {
    const detail = input.tokenProblem?.detail ? ` (${input.tokenProblem.detail})` : '';
    return none({ kind: 'failed', code: 'NoToken', message: `the identity got no token for Azure Resource Manager${detail}.` }, input.tokenProblem?.fix);
  }
  let reader: ArmAuthorizationReader;
  try {
    reader = new ArmAuthorizationReader({ endpoint, token: input.token, timeoutInMs: options.probeTimeoutInMs });
  } catch (error) {
    if (!(error instanceof ArmReadError)) throw error;
    return none(error.failure, 'Set AZURE_RESOURCE_MANAGER_ENDPOINT to an https URL.');
  }
  for (const resource of configured) {
    const scope = options.resourceIds[resource]!;
    try {
      read.set(resource, await reader.listRoleAssignments(scope, principalId));
    } catch (error) {
      if (!(error instanceof ArmReadError)) throw error;
      unread.push({ resource, scope, failure: error.failure, ...optionalFix(unreadFix(error.failure, resource, endpoint, principalId)) });
    }
  }
  return { reader, read, unread };
}

/**
 * The definitions of the roles the assignments name, each read at the resource where its assignment was listed;
 * a built-in role that cannot be read comes from the built-in table (with a note), an unknown one grants nothing.
 */
async function resolveRoles(
  reader: ArmAuthorizationReader | undefined,
  read: ReadonlyMap<AccessResource, AssignmentRef[]>,
  resourceIds: DoctorOptions['resourceIds'],
): Promise<{ roles: RoleDefinition[]; notes: string[] }> {
  const where = new Map<string, string>();
  for (const [resource, listed] of read) for (const a of listed) if (!where.has(roleGuid(a.roleDefinitionId))) where.set(roleGuid(a.roleDefinitionId), resourceIds[resource]!);
  const roles: RoleDefinition[] = [];
  const notes: string[] = [];
  for (const [guid, scope] of where) {
    try {
      roles.push(await reader!.getRoleDefinition(scope, guid));
    } catch (error) {
      if (!(error instanceof ArmReadError)) throw error;
      const builtIn = builtInRoles.find((role) => role.id === guid);
      if (builtIn) roles.push(builtIn);
      notes.push(
        `Role definition ${guid} could not be read at ${scope} (${error.message}); ` +
          (builtIn ? `it is the built-in "${builtIn.name}", taken from the built-in table (a built-in role has the same id in every tenant).` : 'it is no built-in role, so its assignments count as granting nothing here.'),
      );
    }
  }
  return { roles, notes };
}

/** The rows of one scope: every data action, held (read from ARM) against granted by access.json. */
function compareScope(
  input: CheckAccessInput,
  scope: string,
  entry: AccessFileEntry,
  isRead: boolean,
  assignments: readonly AssignmentRef[],
  roles: readonly RoleDefinition[],
  expected: readonly ExpectedAssignment[],
): ScopeAccess {
  const principalId = input.principalId ?? '';
  const held = effectiveDataActions(principalId, scope, assignments, undefined, roles);
  const wanted = effectiveDataActions(principalId, scope, expected, undefined, builtInRoles);
  return {
    scope,
    resource: entry.resource,
    label: describeScope(entry),
    read: isRead,
    dataActions: held.map((row, i): CheckedDataAction => {
      const expectedBy = wanted[i]!.grantedBy.map((g) => ({ role: g.role, scope: g.scope, purpose: expected.find((e) => e.id === g.assignmentId)!.entry.purpose }));
      const status: CheckedStatus = !isRead ? 'not-read' : row.granted ? (expectedBy.length ? 'ok' : 'not-in-access-json') : expectedBy.length ? 'missing' : 'not-granted';
      const commands = status === 'missing' && input.principalId ? roleAssignmentCreateCommands(input.principalId, 'ServicePrincipal', expectedBy[0]!.role, expectedBy[0]!.scope) : undefined;
      return {
        dataAction: row.dataAction,
        status,
        ...(isRead ? { granted: row.granted } : {}),
        grantedBy: isRead ? row.grantedBy : [],
        expectedBy,
        probes: input.probes.filter((p) => p.scope?.toLowerCase() === scope.toLowerCase() && p.dataAction === row.dataAction).map((p) => ({ check: p.check, status: p.status })),
        ...(commands ? { fix: commands.az, ...(input.options.localAzure ? { localFix: localAzureFix(input.options, commands.localAzure) } : {}) } : {}),
      };
    }),
  };
}

function describeScope(entry: AccessFileEntry): string {
  if (entry.queue) return `${entry.resource} queue ${entry.queue}`;
  if (entry.topic && entry.subscription) return `${entry.resource} subscription ${entry.topic}/${entry.subscription}`;
  if (entry.topic) return `${entry.resource} topic ${entry.topic}`;
  return entry.resource;
}

function distinctScopes(expected: readonly ExpectedAssignment[]): { scope: string; entry: AccessFileEntry }[] {
  const seen = new Map<string, { scope: string; entry: AccessFileEntry }>();
  for (const e of expected) if (!seen.has(e.scope.toLowerCase())) seen.set(e.scope.toLowerCase(), { scope: e.scope, entry: e.entry });
  return [...seen.values()];
}

function distinctById(assignments: readonly AssignmentRef[]): AssignmentRef[] {
  return [...new Map(assignments.map((a) => [a.id.toLowerCase(), a])).values()];
}

function roleGuid(roleDefinitionId: string): string {
  return roleDefinitionId.split('/').pop()!.toLowerCase();
}

function resourceGroupOf(resourceId: string): string | undefined {
  return /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+/i.exec(resourceId)?.[0];
}

function unreadFix(failure: ArmReadFailure, resource: AccessResource, endpoint: string, principalId: string): string | undefined {
  switch (failure.kind) {
    case 'forbidden':
      return undefined;
    case 'unauthenticated':
      return `Azure Resource Manager at ${endpoint} refused the identity's token: check that AZURE_RESOURCE_MANAGER_ENDPOINT names the ARM of the identity's cloud and tenant.`;
    case 'not-found':
      return `Azure Resource Manager knows no such resource: check ${resourceIdVariables[resource]}.`;
    case 'unreachable':
      return `Check that AZURE_RESOURCE_MANAGER_ENDPOINT (${endpoint}) is right and reachable from here (network, firewall, proxy).`;
    case 'failed':
      return `Run the doctor again; if it persists, list the assignments instead: az role assignment list --assignee ${principalId} --all --output table`;
  }
}

function optionalFix(fix: string | undefined): { fix?: string } {
  return fix ? { fix } : {};
}
