import type { AssignmentRef, RoleDefinition } from '@keyless/contracts';

/** The api-version of `Microsoft.Authorization` the doctor speaks (role assignments and role definitions). */
export const authorizationApiVersion = '2022-04-01';

/**
 * Why a read from ARM failed.
 * - `forbidden`: 403, e.g. `AuthorizationFailed` (the caller may not read there).
 * - `unauthenticated`: 401, ARM refused the token (`InvalidAuthenticationToken`, a wrong audience or tenant, …).
 * - `not-found`: 404, ARM knows no such scope or definition.
 * - `unreachable`: no answer (network, DNS, TLS, the deadline).
 * - `failed`: any other answer (5xx, 429, not JSON, an unexpected shape, a redirect).
 */
export type ArmReadFailureKind = 'forbidden' | 'unauthenticated' | 'not-found' | 'unreachable' | 'failed';

/** A failed read, in ARM's words where it answered. */
export interface ArmReadFailure {
  kind: ArmReadFailureKind;
  /** HTTP status, when ARM answered. */
  status?: number;
  /** ARM's error code (`AuthorizationFailed`, …), or the doctor's when ARM did not answer (`EndpointUnreachable`, …). */
  code: string;
  message: string;
}

/** A read from ARM failed; {@link failure} says how. */
export class ArmReadError extends Error {
  override readonly name = 'ArmReadError';

  constructor(
    readonly failure: ArmReadFailure,
    options?: { cause?: unknown },
  ) {
    super(`${failure.status ? `${failure.status} ` : ''}${failure.code}: ${failure.message}`, options);
  }
}

/** Options of {@link ArmAuthorizationReader}. */
export interface ArmAuthorizationReaderOptions {
  /** Azure Resource Manager's base URL (https), e.g. `https://management.azure.com`. */
  endpoint: string;
  /** A bearer token for ARM (the identity's own). */
  token: () => Promise<string>;
  /** Budget of one HTTP request, in ms. */
  timeoutInMs: number;
}

/** Pages of a list the reader follows at most (ARM pages role assignments by the thousand). */
const maxPages = 50;

/**
 * Reads role assignments and role definitions through ARM's REST API, as `az rest` would: plain HTTPS with the
 * identity's bearer token, `api-version=2022-04-01`. The token goes to the configured endpoint only: redirects are
 * not followed and a `nextLink` to another origin is refused.
 */
export class ArmAuthorizationReader {
  private readonly origin: string;

  constructor(private readonly options: ArmAuthorizationReaderOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'https:') {
      throw new ArmReadError({ kind: 'failed', code: 'EndpointNotHttps', message: `${options.endpoint} is not an https URL; the identity's token would travel in clear.` });
    }
    this.origin = url.origin;
  }

  /**
   * The role assignments of `principalId` that apply at `scope`, above it and beneath it
   * (`GET {scope}/providers/Microsoft.Authorization/roleAssignments?$filter=assignedTo('{principalId}')`).
   *
   * @throws {ArmReadError}
   */
  async listRoleAssignments(scope: string, principalId: string): Promise<AssignmentRef[]> {
    const query = new URLSearchParams({ $filter: `assignedTo('${principalId}')`, 'api-version': authorizationApiVersion });
    let url: string | undefined = `${this.origin}${scope}/providers/Microsoft.Authorization/roleAssignments?${query}`;
    const assignments: AssignmentRef[] = [];
    for (let page = 0; url !== undefined; page += 1) {
      if (page === maxPages) throw new ArmReadError({ kind: 'failed', code: 'TooManyPages', message: `more than ${maxPages} pages of role assignments at ${scope}` });
      const body = (await this.get(url)) as { value?: unknown; nextLink?: unknown };
      if (!Array.isArray(body.value)) throw unexpected(`the role assignment list at ${scope} has no "value" array`);
      assignments.push(...body.value.map((item) => toAssignment(item, scope)));
      url = typeof body.nextLink === 'string' && body.nextLink ? this.sameOrigin(body.nextLink) : undefined;
    }
    return assignments;
  }

  /**
   * A role definition by its GUID, read at `scope` (`GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`):
   * whoever may read assignments at a scope may read definitions there too.
   *
   * @throws {ArmReadError}
   */
  async getRoleDefinition(scope: string, guid: string): Promise<RoleDefinition> {
    const body = await this.get(`${this.origin}${scope}/providers/Microsoft.Authorization/roleDefinitions/${encodeURIComponent(guid)}?api-version=${authorizationApiVersion}`);
    return toRoleDefinition(body, guid);
  }

  private sameOrigin(link: string): string {
    let url: URL;
    try {
      url = new URL(link, this.origin);
    } catch (error) {
      throw unexpected(`nextLink ${JSON.stringify(link)} is not a URL`, error);
    }
    if (url.origin !== this.origin) throw unexpected(`nextLink points at ${url.origin}, not ${this.origin}; not followed with the identity's token`);
    return url.href;
  }

  private async get(url: string): Promise<unknown> {
    let token: string;
    try {
      token = await this.options.token();
    } catch (error) {
      throw new ArmReadError({ kind: 'failed', code: 'NoToken', message: `the identity got no token for Azure Resource Manager (${(error as Error).message})` }, { cause: error });
    }
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutInMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new ArmReadError(
        {
          kind: 'unreachable',
          code: timedOut ? 'EndpointTimeout' : 'EndpointUnreachable',
          message: timedOut ? `no answer from ${this.origin} within ${this.options.timeoutInMs} ms` : `${this.origin} cannot be reached (${reason(error)})`,
        },
        { cause: error },
      );
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (response.ok && body !== undefined) return body;
    const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : `Http${response.status}`;
    const message = typeof error?.message === 'string' ? error.message : response.ok ? 'the answer is not JSON' : `HTTP ${response.status} ${response.statusText}`.trim();
    const kind: ArmReadFailureKind = response.status === 401 ? 'unauthenticated' : response.status === 403 ? 'forbidden' : response.status === 404 ? 'not-found' : 'failed';
    throw new ArmReadError({ kind, status: response.status, code, message });
  }
}

/** Reduces ARM's role assignment resource to what check access needs. */
function toAssignment(item: unknown, scope: string): AssignmentRef {
  const resource = item as { id?: unknown; properties?: { principalId?: unknown; roleDefinitionId?: unknown; scope?: unknown } } | null;
  const { id } = resource ?? {};
  const { principalId, roleDefinitionId, scope: at } = resource?.properties ?? {};
  if (typeof id !== 'string' || typeof principalId !== 'string' || typeof roleDefinitionId !== 'string' || typeof at !== 'string') {
    throw unexpected(`a role assignment at ${scope} lacks id, properties.principalId, properties.roleDefinitionId or properties.scope`);
  }
  return { id, principalId, roleDefinitionId, scope: at };
}

/** ARM's role definition as a {@link RoleDefinition}; its permission blocks (Azure's roles have one) are joined. */
function toRoleDefinition(body: unknown, guid: string): RoleDefinition {
  const resource = body as { name?: unknown; properties?: { roleName?: unknown; description?: unknown; permissions?: unknown } } | null;
  const properties = resource?.properties;
  if (typeof properties?.roleName !== 'string' || !Array.isArray(properties.permissions)) {
    throw unexpected(`the role definition ${guid} lacks properties.roleName or properties.permissions`);
  }
  const permissions = properties.permissions as Record<string, unknown>[];
  const patterns = (key: string): string[] => permissions.flatMap((block) => (Array.isArray(block[key]) ? (block[key] as unknown[]).filter((p): p is string => typeof p === 'string') : []));
  return {
    name: properties.roleName,
    id: (typeof resource?.name === 'string' ? resource.name : guid).toLowerCase(),
    description: typeof properties.description === 'string' ? properties.description : '',
    actions: patterns('actions'),
    notActions: patterns('notActions'),
    dataActions: patterns('dataActions'),
    notDataActions: patterns('notDataActions'),
  };
}

function unexpected(message: string, cause?: unknown): ArmReadError {
  return new ArmReadError({ kind: 'failed', code: 'UnexpectedResponse', message }, { cause });
}

function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return (error as Error).message;
}
