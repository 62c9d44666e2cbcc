// The `$cbs` node: claims-based security, how a connection gets its tokens. The SDK puts an Entra ID token (type
// `jwt`) for an audience before every link and renews it before it expires; the local Entra's guard verifies it
// (signature, issuer, tenant, audience, expiry). Shared access signatures are refused: the namespace has local
// authentication disabled, as Keyless deploys it. An accepted token becomes the connection's claim for the
// audience's path and binds the connection to its principal (rule 1 of authorization.ts); a refusal before any role
// is checked is logged in the authorization log. What a token allows is decided per link, in authorization.ts.

import type { AuditLog } from '../../audit/audit-log.js';
import type { ConsoleLog } from '../../data-plane.js';
import type { Directory } from '../../entra/directory.js';
import type { Caller, ResourceGuard } from '../../guard/resource-guard.js';
import type { AmqpMessage } from '../amqp/amqp-message.js';
import type { ServiceBusNamespace } from '../entities/service-bus-namespace.js';
import type { BrokerFaults } from './broker-faults.js';
import { maxEntityAddressLength } from '../entities/entity-definitions.js';
import { audiencePath, ConnectionClaims, type Claim } from './connection-claims.js';
import { amqpInt, reply, type ConnectionState } from './connection.js';

/** Token audience Service Bus accepts for Entra ID tokens. */
const audience = 'https://servicebus.azure.net/';

/** The token types of put-token. */
const tokenTypes = {
  sas: 'servicebus.windows.net:sastoken',
  jwt: 'jwt',
} as const;

/** What the `$cbs` node needs from the broker. */
export interface CbsOptions {
  namespace: ServiceBusNamespace;
  guard: ResourceGuard;
  directory: Directory;
  auditLog: AuditLog;
  log: ConsoleLog;
  faults: BrokerFaults | undefined;
  /** A token was accepted and recorded as `claim`: re-check the links it covers and re-arm their expiry. */
  accepted(connection: ConnectionState, claim: Claim): void;
  /** Reports an unexpected failure (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/** Answers put-token requests on `$cbs`. */
export class CbsNode {
  constructor(private readonly options: CbsOptions) {}

  /** A request arrived on the connection's `$cbs` link. */
  onRequest(connection: ConnectionState, request: AmqpMessage): void {
    const properties = request.application_properties ?? {};
    const respond = (status: number, description: string, condition?: string): void =>
      reply(connection, request, { 'status-code': amqpInt(status), 'status-description': description, ...(condition ? { 'error-condition': condition } : {}) });
    const tokenAudience = typeof properties.name === 'string' ? properties.name : '';
    if (properties.operation !== 'put-token') return respond(400, `The $cbs operation "${String(properties.operation)}" is not supported; use put-token.`);
    if (properties.type === tokenTypes.sas) {
      this.options.log(`[servicebus] refused a shared access signature for ${tokenAudience}: local authentication is disabled`);
      return respond(
        401,
        'Shared access signatures are not accepted: this namespace has local (SAS key) authentication disabled, as Keyless deploys it. Authenticate with a Microsoft Entra ID token (a TokenCredential such as ManagedIdentityCredential).',
      );
    }
    if (properties.type !== tokenTypes.jwt) return respond(400, `The token type "${String(properties.type)}" is not supported; put a Microsoft Entra ID token with type "jwt".`);
    const path = audiencePath(tokenAudience);
    if (path === undefined) {
      const shown = tokenAudience.length > 100 ? `${tokenAudience.slice(0, 100)}…` : tokenAudience;
      return respond(400, `The put-token name must be the audience URI (sb://<namespace>/<entity>, a path of at most ${maxEntityAddressLength} characters), not "${shown}".`);
    }
    if (typeof request.body !== 'string') return respond(400, 'The put-token body must be the token as an AMQP string.');
    const token = request.body;
    const faults = this.options.faults;
    if (faults) {
      void faults.beforePutToken().then((refusal) => (refusal ? respond(401, refusal) : this.check(connection, tokenAudience, path, token, respond)));
      return;
    }
    this.check(connection, tokenAudience, path, token, respond);
  }

  private check(connection: ConnectionState, tokenAudience: string, path: string, token: string, respond: (status: number, description: string, condition?: string) => void): void {
    this.options.guard.authenticate(token, [audience]).then(
      (caller) => {
        if (connection.closed) return;
        if (caller.expiresOn.getTime() <= Date.now()) {
          this.refuse(connection, path, caller, `the token expired at ${caller.expiresOn.toISOString()}`);
          return respond(401, `ExpiredToken: The token is expired. Expiration time: '${caller.expiresOn.toISOString()}'.`);
        }
        // Rule 1: a connection acts for one principal; another principal's token changes nothing.
        if (connection.principalId !== undefined && connection.principalId !== caller.principalId) {
          this.refuse(connection, path, caller, `the connection is authorized for principal ${connection.principalId}; a token for another principal is refused`);
          return respond(
            401,
            `Unauthorized access. This connection is already authorized for the principal with object id ${connection.principalId}; ` +
              `a token for object id ${caller.principalId} cannot be put on it. Use a separate connection (a new ServiceBusClient) for another identity.`,
          );
        }
        connection.principalId = caller.principalId;
        const claim = connection.claims.put(path, tokenAudience, caller);
        if (!claim) {
          const description = `The maximum number of '${ConnectionClaims.maxClaims}' tokens per connection has been reached.`;
          this.refuse(connection, path, caller, description);
          // The SDK reports this condition as QuotaExceeded, as Azure's answer.
          return respond(403, description, 'amqp:resource-limit-exceeded');
        }
        try {
          // Rule 2: a renewal re-checks the links the token covers.
          this.options.accepted(connection, claim);
        } catch (error) {
          this.options.fail(error);
        }
        respond(202, 'Accepted');
      },
      (error: unknown) => {
        const reason = (error as { reason?: string }).reason;
        const message = `${reason ? `${reason}: ` : ''}${(error as Error).message}`;
        this.refuse(connection, path, undefined, message);
        respond(401, `Unauthorized access. The token was refused: ${message}.`);
      },
    );
  }

  /** A put-token refused before any role was checked: a console line and a line in the authorization log. */
  private refuse(connection: ConnectionState, path: string, caller: Caller | undefined, reason: string): void {
    const resolved = this.options.namespace.resolve(path);
    const scope = resolved && resolved.kind !== 'cbs' ? resolved.node.armId : this.options.directory.resourceId('serviceBus');
    this.options.log(`[servicebus] refused a token for ${connection.uri(path)} on ${connection.id}: ${reason}`);
    this.options.auditLog.recordAuthorization({
      resource: 'serviceBus',
      principalId: caller?.principalId ?? '',
      ...(caller?.clientId ? { clientId: caller.clientId } : {}),
      scope,
      decision: 'denied',
      operation: `put-token for ${connection.uri(path)} on ${connection.id}`,
      reason,
    });
  }
}
