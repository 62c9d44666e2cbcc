import type { LocalAzureHome } from '../../home.js';

/**
 * Why the local Service Bus refused an operation. Each code maps to the AMQP error condition (and, for
 * `$management` replies, the status code) that `@azure/service-bus` translates into its own error code.
 */
export type BrokerErrorCode =
  /** No queue, topic or subscription at that address (SDK: `MessagingEntityNotFound`). */
  | 'entity-not-found'
  /** A queue, topic, subscription or rule of that name exists already (SDK: `MessagingEntityAlreadyExists`). */
  | 'entity-already-exists'
  /** The entity's status refuses the operation, e.g. a send to a disabled queue (SDK: `MessagingEntityDisabled`). */
  | 'entity-disabled'
  /** The entity is at its maximum size, or a namespace limit is reached (SDK: `QuotaExceeded`). */
  | 'quota-exceeded'
  /** No valid token for the entity, or RBAC denied the data action (SDK: `UnauthorizedAccess`). */
  | 'unauthorized'
  /** A message (or batch) above the namespace's maximum message size (SDK: `MessageSizeExceeded`). */
  | 'message-size-exceeded'
  /** The lock token is unknown, expired, or its message is settled (SDK: `MessageLockLost`). */
  | 'message-lock-lost'
  /** The session lock expired or belongs to another receiver (SDK: `SessionLockLost`). */
  | 'session-lock-lost'
  /** The session is held by another receiver (SDK: `SessionCannotBeLocked`). */
  | 'session-cannot-be-locked'
  /** No message with that sequence number in the wanted state (SDK: `MessageNotFound`). */
  | 'message-not-found'
  /** Nothing arrived within the server-side wait, e.g. no session became available (SDK: `ServiceTimeout`). */
  | 'timeout'
  /** The operation does not apply to this entity, e.g. a session receiver on a queue without sessions. */
  | 'not-allowed'
  /** A request field is missing or has the wrong type. */
  | 'invalid-argument'
  /** An operation this local Service Bus does not implement. */
  | 'not-implemented'
  /** A message the broker cannot decode. */
  | 'decode-error'
  /** The broker failed (for example, the store could not commit). */
  | 'internal';

interface ConditionInfo {
  condition: string;
  /** Status of a `$management` / `$cbs` reply carrying this error. */
  status: number;
}

const conditions: Record<BrokerErrorCode, ConditionInfo> = {
  'entity-not-found': { condition: 'amqp:not-found', status: 404 },
  'entity-already-exists': { condition: 'com.microsoft:entity-already-exists', status: 409 },
  'entity-disabled': { condition: 'com.microsoft:entity-disabled', status: 400 },
  'quota-exceeded': { condition: 'amqp:resource-limit-exceeded', status: 403 },
  unauthorized: { condition: 'amqp:unauthorized-access', status: 401 },
  'message-size-exceeded': { condition: 'amqp:link:message-size-exceeded', status: 413 },
  'message-lock-lost': { condition: 'com.microsoft:message-lock-lost', status: 410 },
  'session-lock-lost': { condition: 'com.microsoft:session-lock-lost', status: 410 },
  'session-cannot-be-locked': { condition: 'com.microsoft:session-cannot-be-locked', status: 410 },
  'message-not-found': { condition: 'com.microsoft:message-not-found', status: 404 },
  timeout: { condition: 'com.microsoft:timeout', status: 408 },
  'not-allowed': { condition: 'amqp:not-allowed', status: 400 },
  'invalid-argument': { condition: 'com.microsoft:argument-error', status: 400 },
  'not-implemented': { condition: 'amqp:not-implemented', status: 501 },
  'decode-error': { condition: 'amqp:decode-error', status: 400 },
  internal: { condition: 'amqp:internal-error', status: 500 },
};

/** An AMQP error as it goes on the wire (detach, rejected outcome, connection close). */
export interface AmqpErrorFields {
  condition: string;
  description: string;
}

/** A refusal of the local Service Bus; `message` is the description the client sees. */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';

  constructor(
    readonly code: BrokerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The AMQP error condition the SDK maps to its code. */
  get condition(): string {
    return conditions[this.code].condition;
  }

  /** The status code of a `$management` reply carrying this error. */
  get status(): number {
    return conditions[this.code].status;
  }

  toAmqp(): AmqpErrorFields {
    return { condition: this.condition, description: this.message };
  }
}

/** Whether `error` is a {@link BrokerError} (by name, so it survives module duplication). */
export function isBrokerError(error: unknown): error is BrokerError {
  return error instanceof Error && error.name === 'BrokerError';
}

/** Any thrown value as a {@link BrokerError}; unexpected failures become `internal`. */
export function toBrokerError(error: unknown): BrokerError {
  if (isBrokerError(error)) return error;
  return new BrokerError('internal', `The local Service Bus failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

/**
 * The description of an unknown entity. The SDK turns `amqp:not-found` into `MessagingEntityNotFound`
 * only when the description matches "The messaging entity … could not be found". The command it names is typed for
 * `home` (default: as for the default home).
 */
export function entityNotFound(uri: string, home?: Pick<LocalAzureHome, 'command'>): BrokerError {
  const list = 'npm run local-azure -- servicebus entity list';
  return new BrokerError(
    'entity-not-found',
    `The messaging entity '${uri}' could not be found. Entities come from the topology file (LOCAL_AZURE_SERVICEBUS_CONFIG) or the management API; see \`${home ? home.command(list) : list}\`.`,
  );
}

/** The error for a message above the namespace's size limit (wording of the real service). */
export function messageTooLarge(size: number, limit: number): BrokerError {
  return new BrokerError(
    'message-size-exceeded',
    `The received message (size: ${size} bytes) exceeds the limit (${limit} bytes) currently allowed on the link. Configure resources.serviceBus.maxMessageSizeInBytes to change the local limit.`,
  );
}
