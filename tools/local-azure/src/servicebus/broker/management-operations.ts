// The `$management` operations on an entity (management.ts receives and answers the requests): message locks and
// settlement by lock token, peek, scheduling and cancelling, deferred receive, session locks and state, session
// listing, batch delete, and the rule operations of rule-operations.ts. Each authorizes its action first; each reads
// and checks its request body, and acts on the entity's queue (queue/) or the namespace.

import { amqpTypes, decodeMessage, longToNumber, uuidToBytes, uuidToString, type AmqpMessage, type AmqpTyped, type IncomingMessage } from '../amqp/amqp-message.js';
import { BrokerError, messageTooLarge } from '../amqp/broker-error.js';
import { encodeDelivered } from './link-consumer.js';
import type { MessageQueue } from '../queue/message-queue.js';
import { ruleOperations } from './rule-operations.js';
import type { EntityNode, ServiceBusNamespace } from '../entities/service-bus-namespace.js';

/** The outcome of a `$management` request. */
export interface ManagementResponse {
  status: number;
  description: string;
  body?: AmqpTyped;
  /** Answer only once the change is committed to the store (sends and entity changes; settlements answer at once). */
  durable?: boolean;
}

/** What a management request needs from the broker. */
export interface ManagementContext {
  namespace: ServiceBusNamespace;
  node: EntityNode;
  maxMessageSizeInBytes: number;
  /** Checks the caller's data action for this operation. @throws {BrokerError} `unauthorized` */
  authorize(action: 'send' | 'receive', operation: string): void;
}

type RequestBody = Record<string, unknown>;

const operations: Record<string, (context: ManagementContext, body: RequestBody) => ManagementResponse> = {
  'com.microsoft:renew-lock': (context, body) => {
    context.authorize('receive', 'renew message lock');
    const queue = receiveQueue(context);
    const now = Date.now();
    const expirations = lockTokens(body).map((token) => queue.locks.renew(token, now));
    return ok({ expirations: amqpTypes.wrap_array(expirations, 0x83, undefined) });
  },

  'com.microsoft:update-disposition': (context, body) => {
    context.authorize('receive', 'settle message');
    const queue = receiveQueue(context);
    const status = text(body, 'disposition-status');
    const properties = optionalMap(body, 'properties-to-modify');
    const now = Date.now();
    const locks = lockTokens(body).map((token) => queue.locks.lockFor(token));
    for (const lock of locks) {
      switch (status) {
        case 'completed':
          queue.locks.complete(lock, now);
          break;
        case 'abandoned':
          queue.locks.abandon(lock, properties, now);
          break;
        case 'defered':
          queue.locks.defer(lock, properties, now);
          break;
        case 'suspended':
          queue.locks.deadLetter(lock, optionalText(body, 'deadletter-reason'), optionalText(body, 'deadletter-description'), properties, now);
          break;
        default:
          throw new BrokerError('invalid-argument', `disposition-status must be completed, abandoned, defered or suspended, not "${status}".`);
      }
    }
    return ok();
  },

  'com.microsoft:peek-message': (context, body) => {
    context.authorize('receive', 'peek messages');
    const queue = receiveQueue(context);
    const from = sequenceNumber(body['from-sequence-number'], 'from-sequence-number');
    const count = integer(body, 'message-count');
    const omitBody = body['omit-message-body'] === true;
    const messages = queue.peek(from, Math.max(0, count), optionalText(body, 'session-id'));
    if (!messages.length) return { status: 204, description: 'No Content' };
    return ok({ messages: amqpTypes.wrap_list(messages.map((message) => ({ message: encodeDelivered(message, undefined, omitBody) }))) });
  },

  'com.microsoft:schedule-message': (context, body) => {
    context.authorize('send', 'schedule messages');
    const target = sendTarget(context);
    const entries = body.messages;
    if (!Array.isArray(entries)) throw new BrokerError('invalid-argument', 'schedule-message needs "messages", a list of maps.');
    const messages: IncomingMessage[] = entries.map((entry: unknown, i) => {
      const encoded = (entry as { message?: unknown } | null)?.message;
      if (!Buffer.isBuffer(encoded)) throw new BrokerError('invalid-argument', `messages[${i}].message must be the encoded message (binary).`);
      if (encoded.length > context.maxMessageSizeInBytes) throw messageTooLarge(encoded.length, context.maxMessageSizeInBytes);
      // A copy: the request's buffer belongs to the connection's read buffer.
      const bytes = Buffer.from(encoded);
      return { amqp: decodeMessage(bytes), payload: bytes };
    });
    const sequenceNumbers = context.namespace.schedule(target, messages, Date.now());
    return { ...ok({ 'sequence-numbers': amqpTypes.wrap_array(sequenceNumbers, 0x81, undefined) }), durable: true };
  },

  'com.microsoft:cancel-scheduled-message': (context, body) => {
    context.authorize('send', 'cancel scheduled messages');
    context.namespace.cancelScheduled(sendTarget(context), sequenceNumbers(body));
    return { ...ok(), durable: true };
  },

  'com.microsoft:receive-by-sequence-number': (context, body) => {
    context.authorize('receive', 'receive deferred messages');
    const queue = receiveQueue(context);
    const mode = body['receiver-settle-mode'] === 0 ? 'receiveAndDelete' : 'peekLock';
    const received = queue.receiveDeferred(sequenceNumbers(body), mode, optionalText(body, 'session-id'), Date.now());
    return ok({
      messages: amqpTypes.wrap_list(
        received.map(({ message, lock }) => ({
          ...(lock ? { 'lock-token': amqpTypes.wrap_uuid(uuidToBytes(lock.token)) } : {}),
          message: encodeDelivered(message, lock?.lockedUntil),
        })),
      ),
    });
  },

  'com.microsoft:renew-session-lock': (context, body) => {
    context.authorize('receive', 'renew session lock');
    const expiration = receiveQueue(context).sessions.renewLock(text(body, 'session-id'), Date.now());
    return ok({ expiration: amqpTypes.wrap_timestamp(expiration) });
  },

  'com.microsoft:set-session-state': (context, body) => {
    context.authorize('receive', 'set session state');
    const state = body['session-state'];
    if (state !== null && state !== undefined && !Buffer.isBuffer(state)) throw new BrokerError('invalid-argument', 'session-state must be binary or null.');
    receiveQueue(context).sessions.setState(text(body, 'session-id'), state ?? null);
    return ok();
  },

  'com.microsoft:get-session-state': (context, body) => {
    context.authorize('receive', 'get session state');
    const session = receiveQueue(context).sessions.locked(text(body, 'session-id'));
    return ok({ 'session-state': session.state });
  },

  'com.microsoft:batch-delete-messages': (context, body) => {
    context.authorize('receive', 'delete messages');
    const queue = receiveQueue(context);
    const count = integer(body, 'message-count');
    if (count < 1) throw new BrokerError('invalid-argument', 'message-count must be at least 1.');
    const before = body['enqueued-time-utc'];
    const cutoff = before instanceof Date ? before.getTime() : typeof before === 'number' ? before : Number.POSITIVE_INFINITY;
    const deleted = queue.deleteMessages(count, cutoff, optionalText(body, 'session-id'));
    return { ...ok({ 'message-count': amqpTypes.wrap_int(deleted) }), durable: true };
  },

  'com.microsoft:get-message-sessions': (context, body) => {
    context.authorize('receive', 'list sessions');
    const skip = typeof body.skip === 'number' ? body.skip : 0;
    const top = typeof body.top === 'number' ? body.top : Number.MAX_SAFE_INTEGER;
    const ids = receiveQueue(context).sessions.ids().slice(skip, skip + top);
    if (!ids.length) return { status: 204, description: 'No Content' };
    return ok({ skip: amqpTypes.wrap_int(skip + ids.length), 'sessions-ids': amqpTypes.wrap_list(ids) });
  },

  ...ruleOperations,
};

/**
 * Runs a `$management` request against the entity its link is attached to.
 * @throws {BrokerError} with the condition the SDK maps to its error code.
 */
export function runManagementOperation(context: ManagementContext, operation: string, request: AmqpMessage): ManagementResponse {
  const handler = operations[operation];
  if (!handler) {
    throw new BrokerError('not-implemented', `The $management operation "${operation}" is not supported by the local Service Bus.`);
  }
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new BrokerError('invalid-argument', `The ${operation} request body must be an AMQP map.`);
  }
  return handler(context, body as RequestBody);
}

function ok(body?: Record<string, unknown>): ManagementResponse {
  return { status: 200, description: 'OK', ...(body ? { body: amqpTypes.wrap_map(body) } : {}) };
}

function receiveQueue(context: ManagementContext): MessageQueue {
  if (!context.node.queue) {
    throw new BrokerError('not-allowed', `${context.node.path} is a topic: receive-side operations need a subscription (<topic>/Subscriptions/<name>).`);
  }
  return context.node.queue;
}

function sendTarget(context: ManagementContext): NonNullable<EntityNode['sendTarget']> {
  if (!context.node.sendTarget) {
    throw new BrokerError('not-allowed', `Messages cannot be scheduled on ${context.node.path}: schedule them on its queue or topic.`);
  }
  return context.node.sendTarget;
}

function lockTokens(body: RequestBody): string[] {
  const tokens = body['lock-tokens'];
  if (!Array.isArray(tokens) || !tokens.every((token) => Buffer.isBuffer(token) && token.length === 16)) {
    throw new BrokerError('invalid-argument', 'lock-tokens must be an array of UUIDs.');
  }
  return tokens.map((token: Buffer) => uuidToString(token));
}

function sequenceNumbers(body: RequestBody): number[] {
  const values = body['sequence-numbers'];
  if (!Array.isArray(values)) throw new BrokerError('invalid-argument', 'sequence-numbers must be an array of longs.');
  return values.map((value, i) => sequenceNumber(value, `sequence-numbers[${i}]`));
}

function sequenceNumber(value: unknown, field: string): number {
  const number = longToNumber(value);
  if (number === undefined) throw new BrokerError('invalid-argument', `${field} must be a long.`);
  return number;
}

function integer(body: RequestBody, field: string): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new BrokerError('invalid-argument', `${field} must be an integer.`);
  return value;
}

function text(body: RequestBody, field: string): string {
  const value = body[field];
  if (typeof value !== 'string') throw new BrokerError('invalid-argument', `${field} must be a string.`);
  return value;
}

function optionalText(body: RequestBody, field: string): string | undefined {
  const value = body[field];
  return value === undefined || value === null ? undefined : String(value);
}

function optionalMap(body: RequestBody, field: string): Record<string, unknown> | undefined {
  const value = body[field];
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) ? (value as Record<string, unknown>) : undefined;
}
