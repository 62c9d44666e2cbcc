// Transfers from clients. On an entity's sender link they are messages: held to the namespace's size limit,
// decoded (one message, or a batch of format 0x80013700), handed to the namespace, and accepted only once the store
// committed them — or rejected with the reason. On `$cbs` and `$management` links they are requests, accepted at
// once and answered on the response link (cbs.ts, management.ts). A transfer on a link the broker detached is
// refused with the detach's reason; on a revoked sender still waiting for its detach, together with it.

import type { Delivery, EventContext } from 'rhea';
import { batchMessageFormat, decodeBatch, encodeMessage, ownBody, type AmqpMessage, type IncomingMessage } from '../amqp/amqp-message.js';
import { BrokerError, messageTooLarge, toBrokerError } from '../amqp/broker-error.js';
import { takeDecodedBytes } from '../amqp/rhea-internals.js';
import type { ServiceBusNamespace } from '../entities/service-bus-namespace.js';
import type { CbsNode } from './cbs.js';
import type { BrokerLinks, SendLinkState } from './links.js';
import type { ManagementNode } from './management.js';
import { acceptedOutcome, rejectedOutcome, settle } from './settlement.js';

/** What incoming transfers need from the broker. */
export interface IncomingTransfersOptions {
  namespace: ServiceBusNamespace;
  /** Largest message (or batch) accepted, in bytes. */
  maxMessageSizeInBytes: number;
  links: BrokerLinks;
  cbs: CbsNode;
  management: ManagementNode;
  /** Reports an unexpected failure (logged; the broker keeps running). */
  fail(error: unknown): void;
}

/** Takes the transfers clients send. */
export class IncomingTransfers {
  constructor(private readonly options: IncomingTransfersOptions) {}

  /** A transfer arrived on a client's sender link. */
  onMessage(context: EventContext): void {
    const receiver = context.receiver!;
    const delivery = context.delivery!;
    const state = this.options.links.stateOf(receiver);
    if (!state || state.closed) {
      if (state?.pendingDetach) {
        state.pendingDetach.deliveries.push(delivery);
        state.pendingDetach.detach();
      } else {
        settle(delivery, rejectedOutcome(state?.detachedWith ?? new BrokerError('not-allowed', 'The link is not attached to an entity.')));
      }
      return;
    }
    const format = (context as EventContext & { format?: number }).format;
    if (state.kind === 'send') {
      this.onSend(state, delivery, context.message, format);
      return;
    }
    settle(delivery, acceptedOutcome());
    if (format !== undefined && format !== 0) return;
    const request = context.message as AmqpMessage;
    if (state.kind === 'cbs-requests') this.options.cbs.onRequest(state.connection, request);
    else if (state.kind === 'management-requests') this.options.management.onRequest(state, request);
  }

  private onSend(state: SendLinkState, delivery: Delivery, message: unknown, format: number | undefined): void {
    const { namespace, maxMessageSizeInBytes } = this.options;
    try {
      const now = Date.now();
      if (state.claim.expiresAt <= now) {
        throw new BrokerError('unauthorized', `Unauthorized access. The token for '${state.claim.audience}' expired; put a new one on $cbs.`);
      }
      let messages: IncomingMessage[];
      if (format === batchMessageFormat) {
        const payload = message as Buffer;
        if (payload.length > maxMessageSizeInBytes) throw messageTooLarge(payload.length, maxMessageSizeInBytes);
        messages = decodeBatch(payload);
      } else if (format === undefined || format === 0) {
        // rhea hands format-0 messages over decoded; the bytes they came in are kept (as a batch's are) and copied out
        // of rhea's read buffer: stored and delivered as sent, never encoded again.
        const amqp = ownBody(message as AmqpMessage);
        const received = takeDecodedBytes(amqp);
        const payload = received ? Buffer.from(received) : encodeMessage(amqp);
        if (payload.length > maxMessageSizeInBytes) throw messageTooLarge(payload.length, maxMessageSizeInBytes);
        messages = [{ amqp, payload }];
      } else {
        throw new BrokerError('decode-error', `Message format ${format} is not supported (use 0, or 0x80013700 for batches).`);
      }
      namespace.send(state.target, messages, now);
      namespace.store.afterCommit((error) =>
        settle(delivery, error ? rejectedOutcome(new BrokerError('internal', `The message could not be stored: ${error.message}`)) : acceptedOutcome()),
      );
    } catch (error) {
      const brokerError = toBrokerError(error);
      if (brokerError.code === 'internal') this.options.fail(error);
      settle(delivery, rejectedOutcome(brokerError));
    }
  }
}
