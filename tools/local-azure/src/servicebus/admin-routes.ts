import type { LocalAzureHome } from '../home.js';
import { ArmError } from '../management/arm-error.js';
import { listLimit } from '../management/list-query.js';
import type { ManagementApi, ManagementRequest } from '../management/management-api.js';
import { annotations, messageIdText, type AmqpMessage } from './amqp/amqp-message.js';
import { formatIsoDuration } from './entities/iso-duration.js';
import type { MessageQueue } from './queue/message-queue.js';
import type { StoredMessage } from './queue/stored-message.js';
import { countDetailsOf, type EntityOrigin, type ReceivableEntity, type ServiceBusNamespace } from './entities/service-bus-namespace.js';
import type { MessageCounts } from './atom/atom-descriptions.js';

/** A row of `servicebus entity list`. */
export interface EntityRow {
  /** Path as clients address it: `orders`, `events`, `events/Subscriptions/vision`. */
  name: string;
  type: 'queue' | 'topic' | 'subscription';
  /** `topology` (from the topology file, applied again at every start) or `runtime` (created through the management API). */
  origin: EntityOrigin;
  active?: number;
  scheduled?: number;
  deferred?: number;
  locked?: number;
  deadLetter?: number;
  transferDeadLetter?: number;
  /**
   * The counts Service Bus reports for the entity (the ATOM and ARM `countDetails`): deferred messages are in `active`
   * there, where `active` above leaves them out and `deferred` counts them.
   */
  countDetails: MessageCounts;
  sessions?: number;
  properties: Record<string, unknown>;
}

/** The namespace as `servicebus show` prints it. */
export interface ServiceBusStatus {
  fullyQualifiedNamespace: string;
  resourceId: string;
  topologyFile: string;
  maxMessageSizeInBytes: number;
  /** Open AMQP connections. */
  connections: number;
  queues: number;
  topics: number;
  subscriptions: number;
}

/** A message as the operator view shows it (`servicebus peek`). */
export interface MessageRow {
  sequenceNumber: number;
  messageId?: string;
  subject?: string;
  sessionId?: string;
  state: 'active' | 'deferred' | 'scheduled' | 'locked';
  enqueuedTime: string;
  expiresAt?: string;
  scheduledEnqueueTime?: string;
  deliveryCount: number;
  deadLetterReason?: string;
  deadLetterErrorDescription?: string;
  deadLetterSource?: string;
  contentType?: string;
  applicationProperties?: Record<string, unknown>;
  /** UTF-8 text of the body when it is text, else `base64:…`; at most 1000 characters. */
  body?: string;
}

/** The messages of one queue, subscription or dead-letter queue, by state (see {@link ServiceBusOperations.messageCounts}). */
export interface SubQueueCounts {
  /** Every message: available, deferred, scheduled and locked ones. */
  total: number;
  scheduled: number;
  deferred: number;
  /** Held by a receiver's peekLock lock right now (counted among the others too). */
  locked: number;
}

/** The dead-lettered messages of a queue or subscription by what a resubmit does with them (see {@link ServiceBusOperations.resubmitCounts}). */
export interface ResubmitCounts {
  /** Every dead-lettered message (the transfer dead-letter queue aside). */
  total: number;
  /** The ones a resubmit moves back to the entity. */
  resubmittable: number;
  /** Held by a receiver of the dead-letter queue: they stay until it settles or abandons them, or their lock expires. */
  locked: number;
  /** Without a session id while the entity requires sessions: they stay, locked or not (the entity refuses them). */
  withoutSessionId: number;
}

/** What a resubmit did (see {@link ServiceBusOperations.resubmit}): the CLI's and ARM's answer. */
export interface ResubmitResult {
  /** The queue or subscription, as the namespace spells it. */
  entity: string;
  /** Moved back to the entity, each with a new sequence number. */
  resubmitted: number;
  /** Left in the dead-letter queue: `lockedKept` plus `withoutSessionIdKept`. */
  kept: number;
  /** Kept because a receiver of the dead-letter queue held them locked (it can still settle them). */
  lockedKept: number;
  /** Kept because the entity requires sessions and they have no session id (counted here even when locked too). */
  withoutSessionIdKept: number;
}

const defaults = {
  peekLimit: 20,
  maxPeekLimit: 1000,
  bodyPreviewCharacters: 1000,
};

/** What an operator does with the namespace; the admin routes and the portal share it. */
export interface ServiceBusOperations {
  status(): ServiceBusStatus;
  /** Every entity with its message counts. */
  entities(): EntityRow[];
  /** Dead-lettered messages of every queue and subscription, with its ARM id (the `DeadletteredMessages` metric). */
  deadLetterCounts(): { entity: string; resourceId: string; count: number }[];
  /** Messages in sequence order from `from`, without locking them; at most `limit` (default 20, at most 1000). */
  peek(path: string, options?: { deadLetter?: boolean; from?: number; limit?: number }): MessageRow[];
  /**
   * How many messages the entity (or its dead-letter queue) holds now, in every state: {@link purge} would delete all
   * but the `locked` ones.
   */
  messageCounts(path: string, options?: { deadLetter?: boolean }): SubQueueCounts;
  /**
   * Deletes every message the entity (or, with `deadLetter`, its dead-letter queue, and only that) holds at the call —
   * scheduled and deferred ones too — but those a receiver holds locked, as Azure's purge does: they stay (counted in
   * `lockedKept`) and their receiver can still settle them.
   */
  purge(path: string, options?: { deadLetter?: boolean }): { entity: string; purged: number; lockedKept: number };
  /** Moves the entity's dead-lettered messages back to it, but those {@link resubmitCounts} says stay. */
  resubmit(path: string): ResubmitResult;
  /** How many of the entity's dead-lettered messages {@link resubmit} would move back now, and why the others stay. */
  resubmitCounts(path: string): ResubmitCounts;
  /** The ARM id of a queue or subscription (the scope its operator actions are checked at). */
  resourceIdOf(path: string): string;
  /** The ARM ids of every queue, topic and subscription (the scopes a new role assignment may name beneath the namespace). */
  resourceIds(): string[];
}

/** Thrown by {@link ServiceBusOperations} for a path that names no queue or subscription. */
export class EntityNotFoundError extends Error {
  override readonly name = 'EntityNotFoundError';
}

/** The operations on `namespace` of the local Azure whose home is `home` (named in the commands its errors suggest). */
export function serviceBusOperations(namespace: ServiceBusNamespace, status: () => ServiceBusStatus, home: LocalAzureHome): ServiceBusOperations {
  const entity = (path: string): ReceivableEntity => {
    const found = namespace.findReceivable(path);
    if (!found) {
      throw new EntityNotFoundError(
        `No queue or subscription "${path}". Give a queue name or <topic>/<subscription>; see \`${home.command('npm run local-azure -- servicebus entity list')}\`.`,
      );
    }
    return found;
  };
  const subQueue = (found: ReceivableEntity, deadLetter = false): MessageQueue => (deadLetter ? found.deadLetter : found.active);
  return {
    status,
    entities: () => entityRows(namespace),
    deadLetterCounts: () => namespace.receivables().map((r) => ({ entity: r.path, resourceId: r.armId, count: r.deadLetter.messages.size })),
    peek(path, options = {}) {
      const limit = Math.min(Math.max(1, options.limit || defaults.peekLimit), defaults.maxPeekLimit);
      return subQueue(entity(path), options.deadLetter).peek(options.from ?? 0, limit).map(messageRow);
    },
    messageCounts(path, options = {}) {
      const { active, scheduled, deferred, locked } = subQueue(entity(path), options.deadLetter).counts();
      return { total: active + scheduled + deferred, scheduled, deferred, locked };
    },
    purge(path, options = {}) {
      const queue = subQueue(entity(path), options.deadLetter);
      return { entity: queue.path, ...queue.purgeUnlocked() };
    },
    resubmit(path) {
      const found = entity(path);
      return { entity: found.path, ...namespace.resubmit(found) };
    },
    resubmitCounts(path) {
      const found = entity(path);
      return { total: found.deadLetter.messages.size, ...namespace.resubmitCounts(found) };
    },
    resourceIdOf: (path) => entity(path).armId,
    resourceIds: () => [...namespace.queues.values(), ...namespace.topics.values(), ...namespace.receivables().filter((r) => r.kind === 'subscription')].map((e) => e.armId),
  };
}

/**
 * The data actions of the operator tools. Azure has no data action of its own for peeking a dead-letter queue,
 * purging or resubmitting from the outside, so the local Azure names one per tool; among the built-in roles only
 * Azure Service Bus Data Owner (`Microsoft.ServiceBus/*`) grants them — a service's Data Sender or Data Receiver
 * on a queue does not.
 */
export const serviceBusOperatorDataActions = {
  peek: 'Microsoft.ServiceBus/namespaces/messages/peek/action',
  purge: 'Microsoft.ServiceBus/namespaces/messages/purge/action',
  resubmit: 'Microsoft.ServiceBus/namespaces/messages/resubmit/action',
} as const;

/**
 * Operator routes of the management API (`/servicebus/…`): the namespace and its entities with their counts
 * (`Microsoft.ServiceBus/namespaces/read` on the namespace), and peek, purge and resubmitting dead-lettered
 * messages (the {@link serviceBusOperatorDataActions} on the entity: Azure Service Bus Data Owner). Errors use
 * ARM's `{error:{code,message}}`.
 */
export function addServiceBusAdminRoutes(api: ManagementApi, operations: ServiceBusOperations): void {
  const path = (request: ManagementRequest): string => request.params.path ?? '';
  const deadLetter = (request: ManagementRequest): boolean => request.url.searchParams.get('dlq') === 'true';
  const namespaceRead = () => [{ action: 'Microsoft.ServiceBus/namespaces/read', scope: operations.status().resourceId }];
  const onEntity = (dataAction: string) => (request: ManagementRequest) => [{ dataAction, scope: entityNotFoundAsArm(() => operations.resourceIdOf(path(request))) }];

  api.add(
    { method: 'GET', pattern: /^\/servicebus$/, access: namespaceRead, handle: () => operations.status() },
    { method: 'GET', pattern: /^\/servicebus\/entities$/, access: namespaceRead, handle: () => operations.entities() },
    {
      method: 'GET',
      pattern: /^\/servicebus\/entities\/(?<path>.+)\/messages$/,
      access: onEntity(serviceBusOperatorDataActions.peek),
      handle: (request) => {
        const { searchParams } = request.url;
        const options = { deadLetter: deadLetter(request), from: Number(searchParams.get('from') ?? 0) || 0, limit: listLimit(request.url, defaults.peekLimit) };
        return entityNotFoundAsArm(() => operations.peek(path(request), options));
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/servicebus\/entities\/(?<path>.+)\/messages$/,
      access: onEntity(serviceBusOperatorDataActions.purge),
      handle: (request) => entityNotFoundAsArm(() => operations.purge(path(request), { deadLetter: deadLetter(request) })),
    },
    {
      method: 'POST',
      pattern: /^\/servicebus\/entities\/(?<path>.+)\/deadLetters:resubmit$/,
      access: onEntity(serviceBusOperatorDataActions.resubmit),
      handle: (request) => entityNotFoundAsArm(() => operations.resubmit(path(request))),
    },
  );
}

/** Runs `fn`, answering an unknown entity with Service Bus's 404 `MessagingEntityNotFound`. */
function entityNotFoundAsArm<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof EntityNotFoundError) throw new ArmError(404, 'MessagingEntityNotFound', error.message);
    throw error;
  }
}

/** Every entity with its message counts (topics hold no messages themselves). */
export function entityRows(namespace: ServiceBusNamespace): EntityRow[] {
  const rows: EntityRow[] = [];
  const receivable = (entity: ReceivableEntity): EntityRow => {
    const counts = entity.active.counts();
    const properties: Record<string, unknown> = {
      lockDuration: formatIsoDuration(entity.definition.lockDurationInMs),
      maxDeliveryCount: entity.definition.maxDeliveryCount,
      defaultMessageTimeToLive: formatIsoDuration(entity.definition.defaultMessageTimeToLiveInMs),
      deadLetteringOnMessageExpiration: entity.definition.deadLetteringOnMessageExpiration,
      requiresSession: entity.definition.requiresSession,
      ...(entity.definition.forwardTo ? { forwardTo: entity.definition.forwardTo } : {}),
      ...(entity.definition.forwardDeadLetteredMessagesTo ? { forwardDeadLetteredMessagesTo: entity.definition.forwardDeadLetteredMessagesTo } : {}),
    };
    if (entity.kind === 'queue') {
      properties.requiresDuplicateDetection = entity.definition.requiresDuplicateDetection;
    } else {
      properties.rules = entity.definition.rules.map((rule) => `${rule.name}: ${rule.filterType} ${rule.filterText}${rule.action ? `; action ${rule.action.expression}` : ''}`);
    }
    if (entity.definition.status !== 'Active') properties.status = entity.definition.status;
    return {
      name: entity.path,
      type: entity.kind,
      origin: entity.origin,
      ...counts,
      deadLetter: entity.deadLetter.messages.size,
      transferDeadLetter: entity.transferDeadLetter.messages.size,
      countDetails: countDetailsOf(entity),
      ...(entity.definition.requiresSession ? { sessions: entity.active.sessions.ids().length } : {}),
      properties,
    };
  };
  for (const queue of namespace.queues.values()) rows.push(receivable(queue));
  for (const topic of namespace.topics.values()) {
    rows.push({
      name: topic.name,
      type: 'topic',
      origin: topic.origin,
      countDetails: countDetailsOf(topic),
      properties: {
        subscriptions: topic.subscriptions.length,
        defaultMessageTimeToLive: formatIsoDuration(topic.definition.defaultMessageTimeToLiveInMs),
        requiresDuplicateDetection: topic.definition.requiresDuplicateDetection,
        ...(topic.definition.status !== 'Active' ? { status: topic.definition.status } : {}),
        ...(topic.definition.requiresDuplicateDetection
          ? { duplicateDetectionHistoryTimeWindow: formatIsoDuration(topic.definition.duplicateDetectionHistoryTimeWindowInMs) }
          : {}),
      },
    });
    for (const subscription of topic.subscriptions) rows.push(receivable(subscription));
  }
  return rows;
}

function messageRow(message: StoredMessage): MessageRow {
  const amqp = message.amqp;
  const properties = amqp.application_properties ?? {};
  const scheduled = amqp.message_annotations?.[annotations.scheduledEnqueueTime];
  const text = (value: unknown): string | undefined => (value === undefined || value === null ? undefined : String(value));
  return {
    sequenceNumber: message.sequenceNumber,
    ...optional('messageId', messageIdText(amqp.message_id)),
    ...optional('subject', amqp.subject),
    ...optional('sessionId', message.sessionId),
    state: message.scheduledAt !== undefined ? 'scheduled' : message.lock ? 'locked' : message.deferred ? 'deferred' : 'active',
    enqueuedTime: new Date(message.enqueuedAt).toISOString(),
    ...optional('expiresAt', Number.isFinite(message.expiresAt) ? new Date(message.expiresAt).toISOString() : undefined),
    ...optional('scheduledEnqueueTime', scheduled instanceof Date ? scheduled.toISOString() : undefined),
    deliveryCount: message.deliveryCount,
    ...optional('deadLetterReason', text(properties.DeadLetterReason)),
    ...optional('deadLetterErrorDescription', text(properties.DeadLetterErrorDescription)),
    ...optional('deadLetterSource', message.deadLetterSource),
    ...optional('contentType', amqp.content_type),
    ...(Object.keys(properties).length ? { applicationProperties: jsonSafe(properties) as Record<string, unknown> } : {}),
    ...optional('body', bodyPreview(amqp)),
  };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

function bodyPreview(amqp: AmqpMessage): string | undefined {
  const body = amqp.body as { typecode?: number; content?: unknown } | undefined;
  let text: string | undefined;
  if (body && body.typecode === 0x75) {
    const sections = Array.isArray(body.content) ? body.content : [body.content];
    const bytes = Buffer.concat(sections.filter((s): s is Buffer => Buffer.isBuffer(s)));
    const decoded = bytes.toString('utf8');
    text = Buffer.from(decoded, 'utf8').equals(bytes) && !hasControlCharacters(decoded) ? decoded : `base64:${bytes.toString('base64')}`;
  } else if (body !== undefined) {
    text = JSON.stringify(jsonSafe(body && typeof body === 'object' && 'content' in body ? body.content : body));
  }
  return text === undefined ? undefined : text.length > defaults.bodyPreviewCharacters ? `${text.slice(0, defaults.bodyPreviewCharacters)}…` : text;
}

/** Control characters other than tab, newline and carriage return mark binary content. */
function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return true;
  }
  return false;
}

function jsonSafe(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `base64:${value.toString('base64')}`;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  return value;
}
