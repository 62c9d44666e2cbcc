import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditLog } from '../audit/audit-log.js';
import type { ConsoleLog } from '../data-plane.js';
import type { LocalFaults } from '../faults/local-faults.js';
import { Router, requestId, sendJson, setNoStore } from '../http/http-kit.js';
import { secretEquals } from '../util/secret-compare.js';
import type { Directory, Host, ManagedIdentity } from './directory.js';
import { IdentityRequestThrottle, type IdentityThrottlingOptions, type ThrottleDecision } from './identity-request-throttle.js';
import type { TokenIssuer } from './token-issuer.js';
import { trimChars } from '../util/trim-chars.js';

/** Resources (token audiences) of Azure services that a managed identity can get tokens for. */
const azureResources = [
  'https://cognitiveservices.azure.com',
  'https://servicebus.azure.net',
  'https://vault.azure.net',
  'https://management.azure.com',
  'https://management.core.windows.net',
  'https://storage.azure.com',
  'https://monitor.azure.com',
  'https://eventhubs.azure.net',
  // Azure Database for PostgreSQL / MySQL with Microsoft Entra authentication (the token is the password).
  'https://ossrdbms-aad.database.windows.net',
];

/** Whether `resource` is a token audience of the tenant: an Azure service, or an app registration's API. */
export function isKnownResource(directory: Directory, resource: string): boolean {
  return azureResources.includes(trimChars(resource, '/', 'end').toLowerCase()) || !!directory.appRegistrationFor(resource);
}

/**
 * Paths, relative to the identity listener, of a host's two endpoint shapes: App Service's `IDENTITY_ENDPOINT`
 * (guarded by the host's `X-IDENTITY-HEADER`) and the IMDS base URL `AZURE_POD_IDENTITY_AUTHORITY_HOST`, whose
 * unguessable path segment is itself the capability (the SDK's IMDS request carries no secret of its own).
 */
export function identityEndpointPaths(host: Pick<Host, 'name' | 'imdsCapability'>): { appService: string; imdsAuthorityHost: string } {
  return { appService: `/hosts/${host.name}/msi/token`, imdsAuthorityHost: `/imds/${host.imdsCapability}` };
}

type Shape = 'appservice' | 'imds';

/** A refusal, with the status and body the real endpoint of that shape sends. */
class IdentityRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly imdsError = 'invalid_request',
    /** Whether the request asked for what belongs to someone else (logged as an access decision too). */
    readonly accessDenied = false,
    /** The reason logged, when it says more than the message the caller gets. */
    readonly logReason = message,
  ) {
    super(message);
  }
}

/**
 * The managed-identity endpoints of every host, in both shapes the Azure SDKs speak:
 * - App Service: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…[&client_id|object_id|mi_res_id]`
 *   with `X-IDENTITY-HEADER` (compared in constant time); errors as `{statusCode, message, correlationId}`.
 * - IMDS: `GET {AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token?api-version=2018-02-01&…`
 *   with `Metadata: true`, where the base URL is `/imds/<capability>` and the capability (compared in constant
 *   time against every host's) names the host; errors as `{error, error_description}`.
 * Without an id the host's system-assigned identity is used; an id must name an identity assigned to
 * the host. Every request lands in the sign-in log; a request for what is not the caller's (a wrong header or
 * capability, another host's identity) also lands in the authorization log.
 *
 * Each host's requests that carry its secret are throttled as IMDS throttles a VM's (see
 * {@link IdentityRequestThrottle}): past the limit, 429 with the shape's error body and no `Retry-After` (IMDS sends
 * none). A throttled host lands in the sign-in log once per window, with the number refused since.
 */
export class ManagedIdentityEndpoint {
  private readonly throttle: IdentityRequestThrottle;
  /** Per host: when its last refusal for throttling was logged, and how many were refused since without a record. */
  private readonly throttleLogged = new Map<string, { at: number; unrecorded: number }>();

  constructor(
    private readonly directory: Directory,
    private readonly issuer: TokenIssuer,
    private readonly log: AuditLog,
    /** The `identity-endpoint` fault (error, garbage, hang, delay) is read on every request; `stopped` is the listener's business. */
    private readonly faults: LocalFaults,
    throttling: IdentityThrottlingOptions,
  ) {
    this.throttle = new IdentityRequestThrottle(throttling);
  }

  /** The request listener; `log` is the local Azure's console, for unexpected failures. */
  listener(log: ConsoleLog): (request: IncomingMessage, response: ServerResponse) => void {
    return new Router((line) => log(`[identity] ${line}`))
      .on('GET', /^\/hosts\/(?<host>[^/]+)\/msi\/token\/?$/, (req, res, { params, url }) =>
        this.handle('appservice', () => this.directory.host(params.host!), req, res, url),
      )
      .on('GET', /^\/imds\/(?<capability>[^/]+)\/metadata\/identity\/oauth2\/token\/?$/, (req, res, { params, url }) =>
        this.handle('imds', () => this.directory.hostByImdsCapability(params.capability!), req, res, url),
      )
      // The IMDS shape used to be /hosts/<host>/…, reachable with no secret at all.
      .on('GET', /^\/hosts\/(?<host>[^/]+)\/metadata\/identity\/oauth2\/token\/?$/, (req, res, { url }) =>
        this.handle('imds', () => undefined, req, res, url),
      )
      .listener();
  }

  private async handle(shape: Shape, findHost: () => Host | undefined, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    // A response that carries a token is never stored (RFC 6749 5.1), by the client's HTTP stack or anything between.
    setNoStore(response);
    const fault = this.faults.get('identity-endpoint');
    if (fault.mode === 'hang') return; // never answers: the client's own timeout must fire
    if (fault.mode === 'error') return sendJson(response, 500, { statusCode: 500, message: 'Internal error (fault injected by the local Azure)' });
    if (fault.mode === 'garbage') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<html><body>not a token</body></html>');
      return;
    }
    if (fault.mode === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.delayInMs));
    const correlationId = requestId(request);
    const resource = url.searchParams.get('resource') ?? undefined;
    let identity: ManagedIdentity | undefined;
    let admission: ThrottleDecision | undefined;
    const host = findHost();
    try {
      if (!host) {
        throw shape === 'appservice'
          ? new IdentityRequestError(404, 'No host of the local Azure has a managed-identity endpoint at this address.', 'invalid_request', true)
          : new IdentityRequestError(
              401,
              "This address is not any host's IMDS endpoint. A host's base URL is AZURE_POD_IDENTITY_AUTHORITY_HOST in its env file, and serves only that host.",
              'unauthorized_client',
              true,
            );
      }
      this.checkCaller(shape, host, request);
      // Only requests that carry the host's secret count against it: anyone else could otherwise throttle the host.
      admission = this.throttle.admit(host.name);
      if (!admission.admitted) throw this.throttled(shape, host, admission);
      this.checkShape(shape, url, request);
      if (!resource) {
        throw new IdentityRequestError(400, shape === 'imds' ? 'Required audience parameter not specified' : 'The resource parameter is required.');
      }
      identity = this.resolveIdentity(shape, host, url);
      this.checkResource(resource);
      const token = await this.issuer.issue(identity, resource);
      this.log.recordSignIn({ host: host.name, endpoint: shape, identity: identity.name, clientId: identity.clientId, principalId: identity.principalId, resource, outcome: 'success', correlationId });
      sendJson(
        response,
        200,
        shape === 'appservice'
          ? { access_token: token.accessToken, expires_on: String(token.expiresOn), resource, token_type: 'Bearer', client_id: identity.clientId }
          : {
              access_token: token.accessToken,
              refresh_token: '',
              expires_in: String(token.expiresOn - token.issuedAt),
              expires_on: String(token.expiresOn),
              ext_expires_in: String(token.expiresOn - token.issuedAt),
              not_before: String(token.notBefore),
              resource,
              token_type: 'Bearer',
            },
      );
    } catch (error) {
      if (!(error instanceof IdentityRequestError)) throw error;
      const throttled = error.status === 429;
      const record = throttled && host ? this.throttleRecordDue(host.name) : { due: true, unrecorded: 0 };
      if (record.due) {
        this.log.recordSignIn({
          ...(host ? { host: host.name } : {}),
          endpoint: shape,
          ...(identity ? { identity: identity.name, clientId: identity.clientId, principalId: identity.principalId } : {}),
          ...(resource ? { resource } : {}),
          outcome: 'failure',
          ...(throttled ? { throttled } : {}),
          reason: record.unrecorded ? `${error.logReason} ${record.unrecorded} more were refused since the last such record.` : error.logReason,
          correlationId,
        });
      }
      if (error.accessDenied) {
        this.log.recordAuthorization({
          resource: 'identity',
          principalId: identity?.principalId ?? '',
          ...(identity ? { identity: identity.name, clientId: identity.clientId } : {}),
          scope: host ? `${this.directory.resourceGroupId}/providers/Microsoft.Web/sites/${host.name}` : this.directory.resourceGroupId,
          decision: 'denied',
          operation: `GET ${shape === 'appservice' ? 'App Service' : 'IMDS'} identity endpoint${resource ? ` for ${resource}` : ''}`,
          reason: error.message,
        });
      }
      sendJson(
        response,
        error.status,
        shape === 'appservice'
          ? { statusCode: error.status, message: error.message, correlationId }
          : { error: error.imdsError, error_description: error.message },
      );
    } finally {
      if (admission?.admitted) admission.release();
    }
  }

  /** The App Service shape's secret: the host's identity header (the IMDS shape's is its address, already matched). */
  private checkCaller(shape: Shape, host: Host, request: IncomingMessage): void {
    if (shape !== 'appservice') return;
    const header = request.headers['x-identity-header'];
    if (!secretEquals(typeof header === 'string' ? header : undefined, host.identityHeader)) {
      throw new IdentityRequestError(401, `The X-IDENTITY-HEADER header is missing or is not the IDENTITY_HEADER of host "${host.name}".`, 'invalid_request', true);
    }
  }

  /**
   * The refusal of a throttled request. IMDS answers `429 {"error":"invalid_request","error_description":"Temporarily
   * throttled, too many requests"}` and nothing else; App Service publishes no limit nor body, so its shape carries
   * the same words in its own error body, with the limit.
   */
  private throttled(shape: Shape, host: Host, refusal: Extract<ThrottleDecision, { admitted: false }>): IdentityRequestError {
    const { requestsPerWindow, windowInMs, maxConcurrentRequests } = this.throttle.options;
    const limit = `${requestsPerWindow} requests per ${windowInMs} ms and ${maxConcurrentRequests} at once per host`;
    const azure = 'Temporarily throttled, too many requests';
    return new IdentityRequestError(
      429,
      shape === 'imds' ? azure : `${azure} (limit: ${limit}).`,
      'invalid_request',
      false,
      `Throttled: host "${host.name}" had ${refusal.detail} (limit: ${limit}, as IMDS limits a VM). ` +
        'Keep one credential per process and reuse its tokens (@azure/identity does not retry a 429 without Retry-After).',
    );
  }

  /**
   * Whether a throttled request of `host` is recorded: one record per window and host, so that a client in a loop
   * does not flood the log; the record counts the refusals left unrecorded since the previous one.
   */
  private throttleRecordDue(host: string): { due: boolean; unrecorded: number } {
    const now = Date.now();
    const last = this.throttleLogged.get(host);
    if (last && now - last.at < this.throttle.options.windowInMs) {
      last.unrecorded++;
      return { due: false, unrecorded: 0 };
    }
    this.throttleLogged.set(host, { at: now, unrecorded: 0 });
    return { due: true, unrecorded: last?.unrecorded ?? 0 };
  }

  private checkShape(shape: Shape, url: URL, request: IncomingMessage): void {
    const apiVersion = url.searchParams.get('api-version');
    if (shape === 'appservice') {
      if (apiVersion !== '2019-08-01') {
        throw new IdentityRequestError(400, `The api-version '${apiVersion ?? ''}' is not supported. Supported version: 2019-08-01.`);
      }
    } else {
      if (request.headers.metadata !== 'true') throw new IdentityRequestError(400, 'Required metadata header not specified');
      if (!apiVersion || !/^20\d\d-\d\d-\d\d$/.test(apiVersion) || apiVersion < '2018-02-01') {
        throw new IdentityRequestError(400, 'Invalid or missing api-version. Use 2018-02-01 or later.', 'invalid_request');
      }
    }
  }

  private resolveIdentity(shape: Shape, host: Host, url: URL): ManagedIdentity {
    const params = shape === 'appservice' ? ['client_id', 'object_id', 'principal_id', 'mi_res_id'] : ['client_id', 'object_id', 'msi_res_id', 'mi_res_id'];
    const given = params.filter((p) => url.searchParams.has(p));
    if (given.length > 1) throw new IdentityRequestError(400, `Only one of ${params.join(', ')} may be given; got ${given.join(', ')}.`);
    const notFound = shape === 'appservice' ? 'Unable to load the proper Managed Identity.' : 'Identity not found';
    const assigned = [...(host.systemAssigned ? [host.systemAssigned] : []), ...host.userAssigned];
    if (given.length === 0) {
      if (!host.systemAssigned) throw new IdentityRequestError(400, notFound);
      return host.systemAssigned;
    }
    const param = given[0]!;
    const value = url.searchParams.get(param)!.toLowerCase();
    const match = assigned.find((identity) =>
      param === 'client_id'
        ? identity.clientId === value
        : param === 'object_id' || param === 'principal_id'
          ? identity.principalId === value
          : identity.resourceId.toLowerCase() === value,
    );
    // Asking a host for an identity it does not hold is a try at someone else's identity.
    if (!match) throw new IdentityRequestError(400, notFound, 'invalid_request', true);
    return match;
  }

  private checkResource(resource: string): void {
    if (isKnownResource(this.directory, resource)) return;
    throw new IdentityRequestError(
      400,
      `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${this.directory.tenantId}. ` +
        'This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.',
      'invalid_resource',
    );
  }
}
