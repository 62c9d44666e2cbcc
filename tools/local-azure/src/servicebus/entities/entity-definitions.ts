import type { RuleDefinition } from '../filters/rule-definition.js';

/** An entity's status: a disabled entity refuses sends and receives, the others one of the two. */
export type EntityStatus = 'Active' | 'Disabled' | 'SendDisabled' | 'ReceiveDisabled';

/** Statuses an entity can be given (Azure also reports `Creating`, `Deleting`, … which cannot be set). */
export const entityStatuses: readonly EntityStatus[] = ['Active', 'Disabled', 'SendDisabled', 'ReceiveDisabled'];

/**
 * Entity defaults where a definition leaves a property out: Azure's defaults for a new entity on the
 * Standard tier (the topology file feeds the Bicep deployment too, so an absent property must mean what
 * it means in Azure).
 */
export const entityDefaults = {
  lockDurationInMs: 60_000,
  maxDeliveryCount: 10,
  /** Azure's default TTL is TimeSpan.MaxValue: messages never expire. */
  defaultMessageTimeToLiveInMs: Number.POSITIVE_INFINITY,
  duplicateDetectionHistoryTimeWindowInMs: 10 * 60_000,
  deadLetteringOnMessageExpiration: false,
  deadLetteringOnFilterEvaluationExceptions: true,
  requiresSession: false,
  requiresDuplicateDetection: false,
  maxSizeInMegabytes: 1024,
  enableBatchedOperations: true,
  status: 'Active' as EntityStatus,
  /** Azure's default is TimeSpan.MaxValue: never deleted for being idle. */
  autoDeleteOnIdleInMs: Number.POSITIVE_INFINITY,
  enablePartitioning: false,
  enableExpress: false,
  supportOrdering: true,
  maxMessageSizeInKilobytes: 256,
} as const;

/** Azure's limits for entity properties (Standard tier). */
export const entityLimits = {
  lockDurationInMs: { min: 5_000, max: 5 * 60_000 },
  maxDeliveryCount: { min: 1, max: 2000 },
  defaultMessageTimeToLiveInMs: { min: 1_000, max: Number.POSITIVE_INFINITY },
  duplicateDetectionHistoryTimeWindowInMs: { min: 20_000, max: 7 * 86_400_000 },
  autoDeleteOnIdleInMs: { min: 5 * 60_000, max: Number.POSITIVE_INFINITY },
  /** The sizes a Standard-tier queue or topic can have. */
  maxSizeInMegabytes: [1024, 2048, 3072, 4096, 5120],
  /** Service Bus allows at most four auto-forwarding hops. */
  forwardingHops: 4,
  /** Queue and topic names (paths) are at most 260 characters, subscription and rule names 50. */
  entityNameLength: 260,
  childNameLength: 50,
} as const;

/**
 * The longest address an entity's node can have, `<topic>/Subscriptions/<subscription>/$Transfer/$DeadLetterQueue`:
 * a longer AMQP address or token audience names nothing in the namespace.
 */
export const maxEntityAddressLength = entityLimits.entityNameLength + '/Subscriptions/'.length + entityLimits.childNameLength + '/$Transfer/$DeadLetterQueue'.length;

/** Properties shared by queues and subscriptions (the entities receivers attach to). */
export interface ReceivableProperties {
  lockDurationInMs: number;
  maxDeliveryCount: number;
  /** Milliseconds; `Infinity` when messages never expire. */
  defaultMessageTimeToLiveInMs: number;
  deadLetteringOnMessageExpiration: boolean;
  requiresSession: boolean;
  /** Queue or topic that receives every message (auto-forwarding). */
  forwardTo?: string;
  /** Queue or topic that receives dead-lettered messages instead of the dead-letter queue. */
  forwardDeadLetteredMessagesTo?: string;
  enableBatchedOperations: boolean;
  status: EntityStatus;
  /** Free text the owner keeps on the entity. */
  userMetadata?: string;
  /** Milliseconds without activity after which the entity is deleted; `Infinity`: never. */
  autoDeleteOnIdleInMs: number;
}

/** A queue's properties. */
export interface QueueDefinition extends ReceivableProperties {
  kind: 'queue';
  name: string;
  requiresDuplicateDetection: boolean;
  duplicateDetectionHistoryTimeWindowInMs: number;
  maxSizeInMegabytes: number;
  enablePartitioning: boolean;
  enableExpress: boolean;
  maxMessageSizeInKilobytes: number;
}

/** A topic's own properties (its subscriptions are entities of their own). */
export interface TopicProperties {
  kind: 'topic';
  name: string;
  defaultMessageTimeToLiveInMs: number;
  requiresDuplicateDetection: boolean;
  duplicateDetectionHistoryTimeWindowInMs: number;
  maxSizeInMegabytes: number;
  enableBatchedOperations: boolean;
  status: EntityStatus;
  userMetadata?: string;
  autoDeleteOnIdleInMs: number;
  enablePartitioning: boolean;
  enableExpress: boolean;
  supportOrdering: boolean;
  maxMessageSizeInKilobytes: number;
}

/** A topic with the subscriptions a topology file gives it. */
export interface TopicDefinition extends TopicProperties {
  subscriptions: SubscriptionDefinition[];
}

/** A subscription's properties and rules. */
export interface SubscriptionDefinition extends ReceivableProperties {
  kind: 'subscription';
  name: string;
  topic: string;
  deadLetteringOnFilterEvaluationExceptions: boolean;
  /** Evaluated in order; a message matching any of them is copied to the subscription. */
  rules: RuleDefinition[];
}

/** Queue defaults for a queue named `name`. */
export function defaultQueue(name: string): QueueDefinition {
  const d = entityDefaults;
  return {
    kind: 'queue',
    name,
    ...defaultReceivable(),
    requiresDuplicateDetection: d.requiresDuplicateDetection,
    duplicateDetectionHistoryTimeWindowInMs: d.duplicateDetectionHistoryTimeWindowInMs,
    maxSizeInMegabytes: d.maxSizeInMegabytes,
    enablePartitioning: d.enablePartitioning,
    enableExpress: d.enableExpress,
    maxMessageSizeInKilobytes: d.maxMessageSizeInKilobytes,
  };
}

/** Topic defaults for a topic named `name`. */
export function defaultTopic(name: string): TopicProperties {
  const d = entityDefaults;
  return {
    kind: 'topic',
    name,
    defaultMessageTimeToLiveInMs: d.defaultMessageTimeToLiveInMs,
    requiresDuplicateDetection: d.requiresDuplicateDetection,
    duplicateDetectionHistoryTimeWindowInMs: d.duplicateDetectionHistoryTimeWindowInMs,
    maxSizeInMegabytes: d.maxSizeInMegabytes,
    enableBatchedOperations: d.enableBatchedOperations,
    status: d.status,
    autoDeleteOnIdleInMs: d.autoDeleteOnIdleInMs,
    enablePartitioning: d.enablePartitioning,
    enableExpress: d.enableExpress,
    supportOrdering: d.supportOrdering,
    maxMessageSizeInKilobytes: d.maxMessageSizeInKilobytes,
  };
}

/** Subscription defaults (without rules) for subscription `name` of `topic`. */
export function defaultSubscription(topic: string, name: string): SubscriptionDefinition {
  return {
    kind: 'subscription',
    name,
    topic,
    ...defaultReceivable(),
    deadLetteringOnFilterEvaluationExceptions: entityDefaults.deadLetteringOnFilterEvaluationExceptions,
    rules: [],
  };
}

function defaultReceivable(): ReceivableProperties {
  const d = entityDefaults;
  return {
    lockDurationInMs: d.lockDurationInMs,
    maxDeliveryCount: d.maxDeliveryCount,
    defaultMessageTimeToLiveInMs: d.defaultMessageTimeToLiveInMs,
    deadLetteringOnMessageExpiration: d.deadLetteringOnMessageExpiration,
    requiresSession: d.requiresSession,
    enableBatchedOperations: d.enableBatchedOperations,
    status: d.status,
    autoDeleteOnIdleInMs: d.autoDeleteOnIdleInMs,
  };
}

/** Path segments a queue or topic name cannot have: they would read as a sub-entity of another. */
const reservedSegments = new Set(['subscriptions', 'rules', '$deadletterqueue', '$transfer', '$management', '$cbs', '$resources', '$namespaceinfo']);

/**
 * What is wrong with a queue or topic name, if anything. Names are paths: letters, digits, `.`, `-`,
 * `_` and `/`, starting and ending with a letter or digit (or ending with `_`), at most 260 characters.
 */
export function entityNameProblem(name: string): string | undefined {
  if (!name.length || name.length > entityLimits.entityNameLength) return `must be 1 to ${entityLimits.entityNameLength} characters long`;
  if (!/^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9_])?$/.test(name)) {
    return 'may contain letters, digits, ".", "-", "_" and "/", and must start with a letter or digit and end with a letter, digit or "_"';
  }
  const segments = name.split('/');
  if (segments.some((segment) => !segment.length)) return 'must not contain "//"';
  // `a/../b` would be a queue beneath `a` to RBAC (its scope …/queues/a/../b), and `b` to every client that resolves the URL.
  if (segments.some((segment) => segment === '.' || segment === '..')) return 'must not contain the path segment "." or ".."';
  const reserved = segments.find((segment) => reservedSegments.has(segment.toLowerCase()));
  if (reserved) return `must not contain the path segment "${reserved}" (reserved for sub-entities)`;
  return undefined;
}

/** What is wrong with a subscription or rule name, if anything (at most 50 characters, no `/`). */
export function childNameProblem(name: string): string | undefined {
  if (!name.length || name.length > entityLimits.childNameLength) return `must be 1 to ${entityLimits.childNameLength} characters long`;
  if (!/^[A-Za-z0-9$]([A-Za-z0-9._-]*[A-Za-z0-9_])?$/.test(name)) {
    return 'may contain letters, digits, ".", "-" and "_", and must start with a letter or digit and end with a letter, digit or "_"';
  }
  return undefined;
}

/** The entries of `values` that are not `undefined` (so they can be spread over defaults). */
export function defined<T extends Record<string, unknown>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}
