// The `$management` node of an entity: request/response operations on a link pair (renew lock, settle by lock token,
// peek, schedule, deferred receive, session state, rules …; the table is management-operations.ts). This unit
// authorizes each request's action against the link's claim (authorization.ts), runs it, and answers on the
// response link the request names: at once, or — for sends and entity changes — once the store committed them.
// Errors carry `statusCode` and `error-condition`, which the SDK maps to its error codes.

import type { AmqpMessage } from '../amqp/amqp-message.js';
import { BrokerError, toBrokerError } from '../amqp/broker-error.js';
import type { ServiceBusNamespace } from '../entities/service-bus-namespace.js';
import type { LinkAuthorization } from './authorization.js';
import type { BrokerFaults } from './broker-faults.js';
import { amqpInt, reply } from './connection.js';
import type { ManagementLinkState } from './links.js';
import { runManagementOperation } from './management-operations.js';

/** What the `$management` nodes need from the broker. */
export interface ManagementNodeOptions {
  namespace: ServiceBusNamespace;
  /** Largest message accepted, in bytes (scheduled messages are held to it). */
  maxMessageSizeInBytes: number;
  authorization: LinkAuthorization;
  faults: BrokerFaults | undefined;
  /** Reports an unexpected failure (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/** Answers requests on `$management` links. */
export class ManagementNode {
  constructor(private readonly options: ManagementNodeOptions) {}

  /** A request arrived on a `$management` link. */
  onRequest(state: ManagementLinkState, request: AmqpMessage): void {
    const { namespace, authorization } = this.options;
    const operation = String(request.application_properties?.operation ?? '');
    const trackingId = request.application_properties?.['com.microsoft:tracking-id'];
    const tracking: Record<string, string> = typeof trackingId === 'string' ? { 'com.microsoft:tracking-id': trackingId } : {};
    try {
      if (operation === 'com.microsoft:renew-session-lock') this.options.faults?.checkSessionRenewal((request.body as Record<string, unknown> | undefined)?.['session-id']);
      const response = runManagementOperation(
        {
          namespace,
          node: state.node,
          maxMessageSizeInBytes: this.options.maxMessageSizeInBytes,
          authorize: (action, description) => authorization.authorizeManagement(state, action, description),
        },
        operation,
        request,
      );
      // Scheduling is a send and a rule change is a change of the entity: acknowledged once committed.
      // Settlements answer at once (see settlement.ts).
      const respond = (error?: Error): void => {
        if (error) {
          const failure = new BrokerError('internal', `The change could not be stored: ${error.message}`);
          reply(state.connection, request, managementError(failure, tracking));
          return;
        }
        reply(state.connection, request, { statusCode: amqpInt(response.status), statusDescription: response.description, ...tracking }, response.body);
      };
      if (response.durable) namespace.store.afterCommit(respond);
      else respond();
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.options.fail(error);
      reply(state.connection, request, managementError(brokerError, tracking));
    }
  }
}

function managementError(error: BrokerError, tracking: Record<string, string>): Record<string, unknown> {
  // The SDK needs `statusCode` (camelCase) and `error-condition` to map the error to its code.
  return { statusCode: amqpInt(error.status), statusDescription: error.message, 'error-condition': error.condition, ...tracking };
}
