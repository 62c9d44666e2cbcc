import { Inject, Injectable } from '@nestjs/common';
import { roleAssignmentCreateCommands } from '@keyless/contracts';
import { metrics, SpanStatusCode, trace, type Counter } from '@opentelemetry/api';
import { wellKnownAudiences, type Audience } from '../audiences.js';
import { RESOLVED_AUTH_OPTIONS } from '../auth.module-definition.js';
import { localAzureCommand, type ResolvedAuthOptions } from '../auth-options.js';
import { AzureIdentityService } from '../azure-identity.service.js';
import {
  AccessDeniedError,
  DatabaseAccessDeniedError,
  isAccessDeniedError,
  isDatabaseAccessDeniedError,
  type AccessDenial,
  type DatabaseRefusalReason,
  type Principal,
} from '../errors.js';
import { readTokenClaims, type TokenClaims } from '../tokens/token-claims.js';
import { authMetricNames } from '../observability/auth.metrics.js';
import { builtInRole, knownDataActions, leastPrivilegedRoleFor, type BuiltInRole } from './built-in-roles.js';

/** The Azure data planes whose denials are explained. */
export type AzureDataPlane = AccessDenial['resource'];

/** A Service Bus entity, as the entity's ARM scope names it. */
export type ServiceBusEntity =
  | { kind: 'queue'; name: string }
  | { kind: 'topic'; name: string }
  | { kind: 'subscription'; topic: string; name: string };

/** What the caller knows about the refused call; everything optional. */
export interface AccessDenialHint {
  /** Which data plane refused. Default: recognised from the error's shape. */
  resource?: AzureDataPlane;
  /** Service Bus: the entity used (its kind cannot be read from a sender's error). */
  entity?: ServiceBusEntity;
  /** Service Bus: what the link was for. */
  operation?: 'send' | 'receive' | 'manage';
  /** The data action, when the caller knows it better than the error text. */
  dataAction?: string;
}

const audienceOf: Record<AzureDataPlane, Audience> = {
  openAi: wellKnownAudiences.cognitiveServices,
  vision: wellKnownAudiences.cognitiveServices,
  serviceBus: wellKnownAudiences.serviceBus,
  keyVault: wellKnownAudiences.keyVault,
};

/** The role to name when the data action is unknown (Azure's older messages do not name it). */
const defaultRole: Record<AzureDataPlane, string> = {
  openAi: 'Cognitive Services OpenAI User',
  vision: 'Cognitive Services User',
  serviceBus: 'Azure Service Bus Data Owner',
  keyVault: 'Key Vault Secrets User',
};

const defaultDataAction: Partial<Record<AzureDataPlane, string>> = {
  vision: knownDataActions.visionAnalyze,
};

/** Service Bus claim names in `UnauthorizedAccess` texts, and the data actions they stand for. */
const serviceBusClaims: Record<string, { dataAction: string; role: string }> = {
  send: { dataAction: knownDataActions.serviceBusSend, role: 'Azure Service Bus Data Sender' },
  listen: { dataAction: knownDataActions.serviceBusReceive, role: 'Azure Service Bus Data Receiver' },
  manage: { dataAction: 'Microsoft.ServiceBus/*', role: 'Azure Service Bus Data Owner' },
};

/** A sign-in to a PostgreSQL server: where it went, as whom, with which token. */
export interface DatabaseSignIn {
  host: string;
  port: number;
  database: string;
  /** The user name sent (`PGUSER`). */
  user: string;
  /** The token sent as the password, when one was (its claims name the principal). */
  token?: string;
}

/** Server refusals of a sign-in, by what the server says (Azure's texts first, then PostgreSQL's SQLSTATE). */
const databaseRefusals: readonly { reason: DatabaseRefusalReason; matches: (code: string, message: string) => boolean }[] = [
  { reason: 'AudienceInvalid', matches: (_, message) => /valid audience claim|wrong audience/i.test(message) },
  { reason: 'TokenExpired', matches: (_, message) => /access token has expired/i.test(message) },
  { reason: 'TokenInvalid', matches: (_, message) => /valid oid claim|AAD_AUTH_TOKENTYPE|Could not validate AAD user|token has invalid format|not a valid access token|empty password returned/i.test(message) },
  { reason: 'PrincipalMissing', matches: (code, message) => code === '28P01' || /password authentication failed/i.test(message) },
];

/** A refusal reduced to what the explanation needs. */
interface Refusal {
  resource: AzureDataPlane;
  code: string;
  message: string;
}

/**
 * Turns 401/403 refusals of Azure data planes into {@link AccessDeniedError}s that name the principal,
 * the data action, the role that grants it, the scope, and the command that fixes it.
 * Recognised:
 * - Azure OpenAI: 401 (or 403) `PermissionDenied` — "The principal `<oid>` lacks the required data action `…`".
 * - Azure AI Vision: 401/403 `PermissionDenied`.
 * - Service Bus: `UnauthorizedAccess` — "Unauthorized access. 'Send' claim(s) are required … Resource: 'sb://…/<entity>'".
 * Token problems (expired, wrong audience: "Access token is missing, invalid, audience is incorrect") are
 * not role problems and are left as they are.
 *
 * Every denial is also telemetry, so an alert can watch it where the logs are not collected: one point on the
 * counter `keyless.auth.access.denials` (attributes `resource`, `role`, `data_action`) and the error recorded as an
 * exception on the active span. Through the Azure Monitor exporter they land in Application Insights as
 * `customMetrics` and `exceptions` (type `AccessDeniedError`) — what infra/modules/alerts.bicep queries.
 */
@Injectable()
export class AccessDiagnostics {
  private denials: Counter | undefined;

  constructor(
    @Inject(RESOLVED_AUTH_OPTIONS) private readonly options: ResolvedAuthOptions,
    @Inject(AzureIdentityService) private readonly identity: AzureIdentityService,
  ) {}

  /**
   * The {@link AccessDeniedError} for `error` if it is a data plane's role refusal, else undefined.
   * An `AccessDeniedError` is returned as is; an `AggregateError` (what the Service Bus SDK throws after its retries)
   * is explained by its last error, which becomes the `cause`.
   */
  explain(error: unknown, hint: AccessDenialHint = {}): AccessDeniedError | undefined {
    if (isAccessDeniedError(error)) return error;
    if (error instanceof AggregateError && error.errors.length > 0) return this.explain(error.errors.at(-1), hint);
    const refusal = recognise(error, hint);
    return refusal ? this.build(refusal, hint, error) : undefined;
  }

  /**
   * The {@link AccessDeniedError} for an HTTP answer of `resource` (status and body text), if it is a
   * role refusal. Used by the client factories' pipeline policies.
   */
  explainResponse(resource: AzureDataPlane, status: number, bodyText: string | undefined, hint: AccessDenialHint = {}): AccessDeniedError | undefined {
    if (status !== 401 && status !== 403) return undefined;
    const body = parseJson(bodyText);
    const inner = (body?.error ?? body) as { code?: unknown; message?: unknown } | undefined;
    const code = typeof inner?.code === 'string' ? inner.code : '';
    const message = typeof inner?.message === 'string' ? inner.message : (bodyText ?? '');
    if (!isRoleRefusal(code, message)) return undefined;
    return this.build({ resource, code, message }, hint, { status, body: bodyText });
  }

  /**
   * The {@link DatabaseAccessDeniedError} for a failed PostgreSQL sign-in if the server refused the identity (no
   * database principal for it, a token it does not take), else undefined. Network and TLS failures are not
   * refusals and stay as they are. A `DatabaseAccessDeniedError` is returned as is.
   */
  explainDatabase(error: unknown, signIn: DatabaseSignIn): DatabaseAccessDeniedError | undefined {
    if (isDatabaseAccessDeniedError(error)) return error;
    if (typeof error !== 'object' || error === null) return undefined;
    const e = error as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : '';
    const reason = databaseRefusals.find((r) => r.matches(code, message))?.reason;
    if (!reason) return undefined;
    const claims = signIn.token ? readTokenClaims(signIn.token) : undefined;
    const principal = this.principal('postgres', '', claims);
    const oid = principal.objectId ?? `<object id of ${principal.clientId ?? 'the identity'}>`;
    const { fix, localFix } = databaseFixes(reason, signIn, oid, principal, claims?.audience, this.options);
    return new DatabaseAccessDeniedError(
      { reason, principal, user: signIn.user, server: { host: signIn.host, port: signIn.port, database: signIn.database }, fix, localFix, detail: `${code ? `${code}: ` : ''}${message}` },
      { cause: error },
    );
  }

  private build(refusal: Refusal, hint: AccessDenialHint, cause: unknown): AccessDeniedError {
    const { resource } = refusal;
    const principal = this.principal(resource, refusal.message);
    let dataAction = hint.dataAction ?? dataActionIn(refusal.message);
    let role: BuiltInRole | undefined;
    let scope: string | undefined;
    if (resource === 'serviceBus') {
      const claim = /'(\w+)' claim\(s\) (are|is) required/i.exec(refusal.message)?.[1]?.toLowerCase() ?? (hint.operation === 'receive' ? 'listen' : hint.operation);
      const known = claim ? serviceBusClaims[claim] : undefined;
      dataAction ??= known?.dataAction;
      role = known ? builtInRole(known.role) : undefined;
      scope = this.serviceBusScope(refusal.message, hint.entity);
    } else {
      dataAction ??= defaultDataAction[resource];
      scope = resource === 'openAi' ? this.options.resources.openAi?.resourceId : resource === 'vision' ? this.options.resources.vision?.resourceId : undefined;
    }
    role ??= (dataAction ? leastPrivilegedRoleFor(dataAction) : undefined) ?? builtInRole(defaultRole[resource])!;
    const assignee = principal.objectId ?? `<object id of ${principal.clientId ?? 'the principal'}>`;
    const scopeArg = scope ?? `<ARM id of the ${resource} resource>`;
    const commands = roleAssignmentCreateCommands(assignee, principal.type, role.name, scopeArg);
    const denied = new AccessDeniedError(
      {
        principal,
        resource,
        ...(dataAction ? { dataAction } : {}),
        role: { name: role.name, id: role.id },
        ...(scope ? { scope } : {}),
        fixCommand: commands.az,
        localFixCommand: localAzureCommand(this.options, commands.localAzure),
        detail: `${refusal.code ? `${refusal.code}: ` : ''}${refusal.message}`,
      },
      { cause },
    );
    this.record(denied);
    return denied;
  }

  private record(denied: AccessDeniedError): void {
    // The configured meter provider, else the global one (the app's once it registered one; a no-op until then).
    this.denials ??= (this.options.meterProvider ?? metrics.getMeterProvider()).getMeter('@keyless/auth').createCounter(authMetricNames.accessDenials, { description: 'Role refusals of Azure data planes (AccessDeniedError)' });
    this.denials.add(1, { resource: denied.resource, role: denied.role.name, ...(denied.dataAction ? { data_action: denied.dataAction } : {}) });
    const span = trace.getActiveSpan();
    span?.recordException(denied);
    span?.setStatus({ code: SpanStatusCode.ERROR, message: `AccessDenied: ${denied.role.name} on ${denied.scope ?? denied.resource}` });
  }

  private principal(resource: AzureDataPlane | 'postgres', message: string, sent?: TokenClaims): Principal {
    const claims = sent ?? this.identity.claimsFor(resource === 'postgres' ? wellKnownAudiences.postgres : audienceOf[resource]);
    const type = this.options.mode === 'managed-identity' ? 'ServicePrincipal' : 'User';
    const objectId = claims?.objectId ?? /principal `?([0-9a-f-]{36})`?/i.exec(message)?.[1];
    const clientId = claims?.clientId ?? (type === 'ServicePrincipal' ? this.options.clientId : undefined);
    return {
      type,
      ...(clientId ? { clientId } : {}),
      ...(objectId ? { objectId } : {}),
      ...(claims?.tenantId ? { tenantId: claims.tenantId } : {}),
    };
  }

  /**
   * The ARM scope of a Service Bus entity: `<namespace id>/queues/<q>`, `/topics/<t>` or
   * `/topics/<t>/subscriptions/<s>`. The entity comes from the hint; else from an entity ARM id under
   * the namespace in the message (the local broker names it); else from the error's
   * `Resource: 'sb://…/<path>'` (a one-segment path is a queue or a topic: without a hint the
   * namespace itself is the scope).
   */
  private serviceBusScope(message: string, entity: ServiceBusEntity | undefined): string | undefined {
    const namespaceId = this.options.resources.serviceBus?.resourceId;
    if (!namespaceId) return undefined;
    if (!entity) {
      const named = new RegExp(`${escapeRegExp(namespaceId)}/(queues|topics)/[\\w.~-]+(/subscriptions/[\\w.~-]+)?`, 'i').exec(message)?.[0];
      if (named) return `${namespaceId}${named.slice(namespaceId.length)}`;
    }
    const resolved = entity ?? entityFromMessage(message);
    if (!resolved) return namespaceId;
    switch (resolved.kind) {
      case 'queue':
        return `${namespaceId}/queues/${resolved.name}`;
      case 'topic':
        return `${namespaceId}/topics/${resolved.name}`;
      case 'subscription':
        return `${namespaceId}/topics/${resolved.topic}/subscriptions/${resolved.name}`;
    }
  }
}

/**
 * What fixes a refused database sign-in, in Azure and locally. A missing principal is created by the server's
 * Microsoft Entra administrator (`pgaadauth_create_principal_with_oid`, as an admin: the services create their
 * tables and the `vector` extension), or the identity is made that administrator.
 */
function databaseFixes(
  reason: DatabaseRefusalReason,
  signIn: DatabaseSignIn,
  oid: string,
  principal: Principal,
  audience: string | undefined,
  options: ResolvedAuthOptions,
): { fix: string; localFix: string } {
  const resourceId = options.resources.postgres?.resourceId;
  const server = /\/flexibleServers\/([^/]+)/i.exec(resourceId ?? '')?.[1] ?? /^([^.]+)\.postgres\.database\.azure\.com$/i.exec(signIn.host)?.[1] ?? '<server name>';
  const group = /\/resourceGroups\/([^/]+)/i.exec(resourceId ?? '')?.[1] ?? '<resource group>';
  const type = principal.type === 'User' ? 'User' : 'ServicePrincipal';
  switch (reason) {
    case 'PrincipalMissing':
      return {
        fix: [
          `make the identity the server's Microsoft Entra administrator:`,
          `    az postgres flexible-server microsoft-entra-admin create --resource-group ${group} --server-name ${server} --display-name ${signIn.user} --object-id ${oid} --type ${type}`,
          `  or, as a Microsoft Entra administrator connected to database "postgres", create its principal:`,
          `    SELECT * FROM pgaadauth_create_principal_with_oid('${signIn.user}', '${oid}', '${type === 'User' ? 'user' : 'service'}', true, false);`,
          `  and check that PGUSER is the identity's name (the principal's name).`,
        ].join('\n'),
        localFix:
          `declare the identity's principal in infra/access.json, "databasePrincipals": { "resource": "postgres", "administrator": true, "purpose": "…" }, ` +
          `and restart the local Azure (\`${localAzureCommand(options, 'npm start')}\` or \`${localAzureCommand(options, 'npm run local-azure')}\`); PGUSER must be the access file's "identity" (${signIn.user} now).`,
      };
    case 'AudienceInvalid':
      return {
        fix: `sign in with a token for ${wellKnownAudiences.postgres.resource} (the "postgres" audience of @keyless/auth; the token sent was for ${audience ?? 'another audience'}).`,
        localFix: 'the same: the local Azure checks the audience as Azure does.',
      };
    case 'TokenExpired':
      return {
        fix: "check the clocks of this host and the server: tokens are handed out only until shortly before they expire, and a new connection always gets a valid one.",
        localFix: 'the same (the local Azure checks expiry as Azure does).',
      };
    case 'TokenInvalid':
      return {
        fix: "sign in with the managed identity's own access token for the \"postgres\" audience (no other token, no password); the server needs Microsoft Entra authentication enabled for this tenant.",
        localFix: 'the same: the local Azure takes only tokens it issued, for the "postgres" audience.',
      };
  }
}

function recognise(error: unknown, hint: AccessDenialHint): Refusal | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; code?: unknown; status?: unknown; statusCode?: unknown; message?: unknown; error?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const code = typeof e.code === 'string' ? e.code : '';
  // Service Bus (ServiceBusError / MessagingError from @azure/core-amqp).
  if (code === 'UnauthorizedAccess' || code === 'UnauthorizedError') {
    // Token problems (no token put on $cbs, an expired one) share the code; only role refusals qualify.
    if (!isRoleRefusal(code, message)) return undefined;
    return { resource: hint.resource ?? 'serviceBus', code, message };
  }
  // openai's APIError: status 401/403, `error` = the body's error object.
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === 401 || status === 403) {
    const inner = (typeof e.error === 'object' && e.error !== null ? e.error : {}) as { code?: unknown; message?: unknown };
    const innerCode = typeof inner.code === 'string' ? inner.code : code;
    const innerMessage = typeof inner.message === 'string' ? inner.message : message.replace(/^\d{3}\s+/, '');
    if (!isRoleRefusal(innerCode, innerMessage)) return undefined;
    const resource = hint.resource ?? (/OpenAI/i.test(innerMessage) ? 'openAi' : /ComputerVision|imageanalysis/i.test(innerMessage) ? 'vision' : undefined);
    return resource ? { resource, code: innerCode, message: innerMessage } : undefined;
  }
  return undefined;
}

/** Role refusals, as opposed to token rejections (which no role assignment fixes). */
function isRoleRefusal(code: string, message: string): boolean {
  if (/^PermissionDenied$|^AuthorizationFailed$|^Forbidden$/i.test(code)) return true;
  return /lacks the required data action|does not have access|claim\(s\) (are|is) required|not authorized to perform/i.test(message);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function dataActionIn(message: string): string | undefined {
  return /(Microsoft\.[A-Za-z]+\/[\w/.:*-]+\/action)/.exec(message)?.[1];
}

function entityFromMessage(message: string): ServiceBusEntity | undefined {
  const path = /Resource:\s*'?(?:sb|amqps?):\/\/[^/\s']+\/([^'\s]+)'?/i.exec(message)?.[1]?.replace(/[.'"]+$/, '');
  if (!path) return undefined;
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 3 && /^subscriptions$/i.test(parts[1]!)) return { kind: 'subscription', topic: parts[0]!, name: parts[2]! };
  return undefined;
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
