import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../config/local-azure-config.js';
import { BodyTooLargeError, readBody, Router, sendJson } from '../http/http-kit.js';
import { builtInRoles, findRole } from '../rbac/built-in-roles.js';
import { isArmScope, normalizeScope } from '../rbac/scope.js';
import type { LocalAzure } from '../local-azure.js';

/** An admin request the local Azure refuses, with ARM's error shape. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The admin API (HTTPS, management port): the local counterpart of ARM and the Entra portal for what the
 * CLI does — resources, identities and hosts, role assignments, sign-in and authorization logs, key
 * rollover (fault injection: faults/fault-routes.ts). Errors use ARM's `{error:{code,message}}`.
 */
export function adminRouter(azure: LocalAzure): Router {
  const router = new Router((_req, res) =>
    sendJson(res, 404, { error: { code: 'NotFound', message: 'No such admin endpoint. See `npm run local-azure -- --help`.' } }),
  );
  const handle =
    (fn: (req: IncomingMessage, url: URL) => Promise<unknown> | unknown, status = 200) =>
    async (req: IncomingMessage, res: ServerResponse, { url }: { url: URL }) => {
      try {
        sendJson(res, status, await fn(req, url));
      } catch (error) {
        if (error instanceof AdminError) return sendJson(res, error.status, { error: { code: error.code, message: error.message } });
        if (error instanceof ConfigError) return sendJson(res, 400, { error: { code: 'InvalidConfiguration', message: error.message } });
        throw error;
      }
    };

  router
    .on('GET', /^\/health$/, handle(() => ({ status: 'ok' })))
    .on(
      'GET',
      /^\/tenant$/,
      handle(() => ({
        tenantId: azure.directory.tenantId,
        subscriptionId: azure.directory.subscriptionId,
        resourceGroup: azure.directory.resourceGroupId,
        authority: azure.endpoints.login,
      })),
    )
    .on('GET', /^\/resources$/, handle(() => azure.directory.resources().map((r) => ({ ...r, endpoint: azure.resourceEndpoint(r.key) }))))
    .on('GET', /^\/identities$/, handle(() => azure.directory.identities()))
    .on(
      'GET',
      /^\/hosts$/,
      handle(() =>
        azure.directory.hosts().map((host) => ({
          name: host.name,
          systemAssigned: host.systemAssigned ?? null,
          userAssigned: host.userAssigned,
          envFile: azure.home.envFile(host.name),
          ...azure.identityEndpointsOf(host.name),
        })),
      ),
    )
    .on('GET', /^\/roleDefinitions$/, handle(() => builtInRoles))
    .on('GET', /^\/roleAssignments$/, handle((_req, url) => azure.roleAssignments.list(assignmentFilter(azure, url.searchParams))))
    .on(
      'POST',
      /^\/roleAssignments$/,
      handle(async (req) => {
        const body = await jsonBody(req);
        const filter = assignmentFilter(azure, new URLSearchParams(body as Record<string, string>), true);
        return azure.roleAssignments.create({ principalId: filter.principalId!, role: filter.role!, scope: filter.scope!, source: 'cli' });
      }, 201),
    )
    .on(
      'DELETE',
      /^\/roleAssignments$/,
      handle((_req, url) => {
        const id = url.searchParams.get('id');
        if (id) return azure.roleAssignments.delete({ id });
        const filter = assignmentFilter(azure, url.searchParams);
        if (!filter.principalId && !filter.role && !filter.scope) {
          throw new AdminError(400, 'MissingFilter', 'Give --ids, or at least one of --assignee, --role, --scope.');
        }
        return azure.roleAssignments.delete(filter);
      }),
    )
    .on('POST', /^\/roleAssignments:reset$/, handle(() => azure.applyAccessFile()))
    .on('GET', /^\/logs\/signIns$/, handle((_req, url) => azure.auditLog.signIns(logQuery(url))))
    .on('GET', /^\/logs\/authorizations$/, handle((_req, url) => azure.auditLog.authorizations(logQuery(url))))
    .on('POST', /^\/signingKeys:rotate$/, handle(async () => ({ kid: await azure.keys.rotate(), keys: azure.keys.jwks().keys.map((k) => k.kid) })));
  return router;
}

function assignmentFilter(azure: LocalAzure, params: URLSearchParams, requireAll = false) {
  const assignee = params.get('assignee') ?? undefined;
  const roleName = params.get('role') ?? undefined;
  const scope = params.get('scope') ?? undefined;
  if (requireAll) {
    const missing = [!assignee && '--assignee', !roleName && '--role', !scope && '--scope'].filter(Boolean);
    if (missing.length) throw new AdminError(400, 'MissingArgument', `the following arguments are required: ${missing.join(', ')}`);
  }
  const identity = assignee ? azure.directory.findIdentity(assignee) : undefined;
  if (assignee && !identity) {
    throw new AdminError(
      400,
      'PrincipalNotFound',
      `Cannot find a managed identity with name, client id or object id '${assignee}'. See \`npm run local-azure -- identity list\`.`,
    );
  }
  const role = roleName ? findRole(roleName) : undefined;
  if (roleName && !role) {
    throw new AdminError(400, 'RoleDefinitionNotFound', `Role '${roleName}' doesn't exist. Known roles: ${builtInRoles.map((r) => r.name).join(', ')}.`);
  }
  return {
    ...(identity ? { principalId: identity.principalId } : {}),
    ...(role ? { role } : {}),
    ...(scope ? { scope: resolveScope(azure, scope) } : {}),
  };
}

/** Accepts an ARM id under the local subscription, or the access file's short form (`serviceBus/queues/x`). */
function resolveScope(azure: LocalAzure, scope: string): string {
  if (isArmScope(scope)) {
    const normalized = normalizeScope(scope);
    if (!normalized.toLowerCase().startsWith(`/subscriptions/${azure.directory.subscriptionId}`)) {
      throw new AdminError(400, 'InvalidScope', `Scope '${scope}' is not in the local subscription ${azure.directory.subscriptionId}.`);
    }
    return normalized;
  }
  const [key, ...rest] = normalizeScope(scope).slice(1).split('/');
  const resource = azure.directory.resources().find((r) => r.key.toLowerCase() === key?.toLowerCase());
  if (!resource) {
    throw new AdminError(
      400,
      'InvalidScope',
      `Scope '${scope}' is neither an ARM id (/subscriptions/…) nor <resource>[/…] with resource one of ${azure.directory
        .resources()
        .map((r) => r.key)
        .join(', ')}.`,
    );
  }
  return normalizeScope([resource.id, ...rest].join('/'));
}

function logQuery(url: URL) {
  const limit = Number(url.searchParams.get('limit') ?? 100);
  const principal = url.searchParams.get('principal');
  const since = url.searchParams.get('since');
  return { limit: Number.isFinite(limit) ? limit : 100, ...(principal ? { principal } : {}), ...(since ? { since } : {}) };
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  let raw: Buffer;
  try {
    raw = await readBody(req, 64 * 1024);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw new AdminError(413, 'RequestTooLarge', error.message);
    throw error;
  }
  try {
    return raw.length ? (JSON.parse(raw.toString('utf8')) as unknown) : {};
  } catch {
    throw new AdminError(400, 'InvalidJson', 'The request body is not valid JSON.');
  }
}
