import { randomUUID } from 'node:crypto';
import { annotations, decodeMessageFast, encodeMessage, messageIdText, type AmqpMessage, type IncomingMessage } from '../amqp/amqp-message.js';
import { BrokerError, entityNotFound } from '../amqp/broker-error.js';
import { entityLimits, type QueueDefinition, type ReceivableProperties, type SubscriptionDefinition, type TopicProperties } from './entity-definitions.js';
import { decodeDefinition, encodeDefinition } from '../store/entity-records.js';
import type { EntityRecord, MessageStore } from '../store/message-store.js';
import { MessageQueue, type QueueContext } from '../queue/message-queue.js';
import { StoredMessage } from '../queue/stored-message.js';
import type { RuleDefinition } from '../filters/rule-definition.js';
import type { LocalAzureHome } from '../../home.js';
import type { FilterInput } from '../filters/sql-filter.js';
import type { Topology } from './topology.js';
import type { MessageCounts } from '../atom/atom-descriptions.js';
import { trimChars } from '../../util/trim-chars.js';

/** Where an entity came from: the topology file (applied again at every start) or the management API. */
export type EntityOrigin = 'topology' | 'runtime';

/** What every entity records about itself besides its definition. */
interface EntityLifecycle {
  origin: EntityOrigin;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
  /** Last send or receive, epoch ms. */
  accessedAt: number;
}

/** A queue or topic: what senders send to. Assigns sequence numbers and detects duplicates. */
abstract class SendTarget implements EntityLifecycle {
  lastSequenceNumber = 0;
  readonly duplicates = new Map<string, number>();
  origin: EntityOrigin = 'topology';
  createdAt = 0;
  updatedAt = 0;
  accessedAt = 0;

  constructor(
    readonly armId: string,
    /** Store key of its sequence counter and definition (and of its active queue, for queues). */
    readonly storeKey: string,
  ) {}

  abstract readonly kind: 'queue' | 'topic';
  abstract readonly definition: QueueDefinition | TopicProperties;

  get name(): string {
    return this.definition.name;
  }

  get requiresDuplicateDetection(): boolean {
    return this.definition.requiresDuplicateDetection;
  }

  get duplicateDetectionHistoryTimeWindowInMs(): number {
    return this.definition.duplicateDetectionHistoryTimeWindowInMs;
  }

  get defaultMessageTimeToLiveInMs(): number {
    return this.definition.defaultMessageTimeToLiveInMs;
  }
}

/** A queue with its dead-letter and transfer dead-letter sub-queues. */
export class QueueEntity extends SendTarget {
  readonly kind = 'queue';
  readonly active: MessageQueue;
  readonly deadLetter: MessageQueue;
  readonly transferDeadLetter: MessageQueue;

  constructor(
    /** Changed in place by updates (its sub-queues read it). */
    readonly definition: QueueDefinition,
    armId: string,
    context: QueueContext,
  ) {
    const key = `queue:${definition.name.toLowerCase()}`;
    super(armId, key);
    [this.active, this.deadLetter, this.transferDeadLetter] = subQueues(definition.name, key, definition, context);
  }

  get path(): string {
    return this.name;
  }

  get sequenceOwner(): SendTarget {
    return this;
  }

  /** The active, dead-letter and transfer dead-letter queues. */
  get queues(): MessageQueue[] {
    return [this.active, this.deadLetter, this.transferDeadLetter];
  }
}

/** A topic and its subscriptions. */
export class TopicEntity extends SendTarget {
  readonly kind = 'topic';
  readonly subscriptions: SubscriptionEntity[] = [];

  constructor(
    readonly definition: TopicProperties,
    armId: string,
  ) {
    super(armId, `topic:${definition.name.toLowerCase()}`);
  }

  get path(): string {
    return this.name;
  }

  /** A subscription by name (case-insensitive). */
  subscription(name: string): SubscriptionEntity | undefined {
    const lower = name.toLowerCase();
    return this.subscriptions.find((subscription) => subscription.name.toLowerCase() === lower);
  }
}

/** A topic subscription with its sub-queues and rules. */
export class SubscriptionEntity implements EntityLifecycle {
  readonly kind = 'subscription';
  readonly active: MessageQueue;
  readonly deadLetter: MessageQueue;
  readonly transferDeadLetter: MessageQueue;
  readonly storeKey: string;
  origin: EntityOrigin = 'topology';
  createdAt = 0;
  updatedAt = 0;
  accessedAt = 0;

  constructor(
    /** Changed in place by updates and rule changes (its sub-queues and the router read it). */
    readonly definition: SubscriptionDefinition,
    readonly topic: TopicEntity,
    readonly armId: string,
    context: QueueContext,
  ) {
    const path = `${topic.name}/Subscriptions/${definition.name}`;
    this.storeKey = `subscription:${topic.name.toLowerCase()}/${definition.name.toLowerCase()}`;
    [this.active, this.deadLetter, this.transferDeadLetter] = subQueues(path, this.storeKey, definition, context);
  }

  get name(): string {
    return this.definition.name;
  }

  get path(): string {
    return `${this.topic.name}/Subscriptions/${this.definition.name}`;
  }

  get sequenceOwner(): SendTarget {
    return this.topic;
  }

  get queues(): MessageQueue[] {
    return [this.active, this.deadLetter, this.transferDeadLetter];
  }

  /** A rule by name (case-insensitive). */
  rule(name: string): RuleDefinition | undefined {
    const lower = name.toLowerCase();
    return this.definition.rules.find((rule) => rule.name.toLowerCase() === lower);
  }
}

/** An entity receivers attach to. */
export type ReceivableEntity = QueueEntity | SubscriptionEntity;

/** Any queue, topic or subscription. */
export type AnyEntity = QueueEntity | TopicEntity | SubscriptionEntity;

function subQueues(path: string, key: string, properties: ReceivableProperties, context: QueueContext): [MessageQueue, MessageQueue, MessageQueue] {
  return [
    new MessageQueue(path, key, 'active', properties, context),
    new MessageQueue(`${path}/$DeadLetterQueue`, `${key}#dlq`, 'deadLetter', properties, context),
    new MessageQueue(`${path}/$Transfer/$DeadLetterQueue`, `${key}#transfer-dlq`, 'transferDeadLetter', properties, context),
  ];
}

/** What an AMQP address names. */
export type ResolvedAddress =
  | { kind: 'cbs' }
  | { kind: 'entity'; node: EntityNode }
  | { kind: 'management'; node: EntityNode };

/** A queue, topic, subscription or sub-queue, as addressed by a link. */
export interface EntityNode {
  /** Canonical path (`orders`, `events/Subscriptions/vision/$DeadLetterQueue`). */
  path: string;
  /** ARM id of the entity that RBAC checks (sub-queues are checked on their entity). */
  armId: string;
  /** Set when senders may send here (a queue or topic, not a sub-queue). */
  sendTarget?: QueueEntity | TopicEntity;
  /** Set when receivers may receive here (not a topic). */
  queue?: MessageQueue;
  /** The queue or subscription the node belongs to. */
  entity?: ReceivableEntity;
}

/** One message placed in one queue by a send. */
interface Placement {
  queue: MessageQueue;
  amqp: AmqpMessage;
  /** The message's bytes as sent, shared by the placements of one message that no rule action changed. */
  payload?: Buffer;
  /** The id the broker assigned, which `payload` lacks. */
  assignedMessageId?: string;
  owner: SendTarget;
  ttl: number;
}

/** Options of {@link ServiceBusNamespace}. */
export interface ServiceBusNamespaceOptions {
  topology: Topology;
  store: MessageStore;
  /** ARM id of the namespace; entity ids hang below it. */
  namespaceId: string;
  /** Reports failures inside timers. */
  fail(error: unknown): void;
  /** The home, so the command a not-found error names works as printed for a home of its own. Default: the default home. */
  home?: Pick<LocalAzureHome, 'command'>;
}

/** What loading the store found (for the start-up summary). */
export interface LoadSummary {
  messages: number;
  /** Stored messages of entities that no longer exist (kept on disk). */
  orphaned: number;
  /** Entities created at run time and restored. */
  runtimeEntities: number;
  /** Stored entities that could not be restored, with the reason (their rows stay). */
  unreadable: string[];
  /** Entities created at run time that the topology file now defines: the file's definition applies. */
  superseded: string[];
  /** What the store found at start-up worth a log line (a torn journal tail discarded, an older store migrated). */
  storeNotes: string[];
}

/** Service Bus's dead-letter reasons for messages it could not forward. */
const transferReasons = {
  hops: 'MaxTransferHopCountExceeded',
  unavailable: 'TransferDestinationEntityUnavailable',
} as const;

/**
 * The entities of the local namespace and how messages move between them: sending with sequence
 * numbers, duplicate detection, TTL, scheduling, topic fan-out through rules, auto-forwarding and
 * dead-lettering; creating, changing and deleting entities at run time; loading everything back from the
 * store at start-up.
 */
export class ServiceBusNamespace {
  readonly queues = new Map<string, QueueEntity>();
  readonly topics = new Map<string, TopicEntity>();
  readonly store: MessageStore;
  /** When the namespace was first created (its store), epoch ms. */
  createdAt = 0;
  private readonly context: QueueContext;
  private readonly removalListeners: ((entity: AnyEntity) => void)[] = [];

  constructor(private readonly options: ServiceBusNamespaceOptions) {
    this.store = options.store;
    this.context = {
      store: options.store,
      deadLetter: (queue, message, reason, description) => this.deadLetter(queue, message, reason, description),
      fail: options.fail,
    };
    const now = Date.now();
    for (const queue of options.topology.queues) this.addQueue(queue, 'topology', now);
    for (const { subscriptions, ...topic } of options.topology.topics) {
      const entity = this.addTopic(topic, 'topology', now);
      for (const subscription of subscriptions) this.addSubscription(entity, subscription, 'topology', now);
    }
  }

  /** Every queue and subscription. */
  receivables(): ReceivableEntity[] {
    return [...this.queues.values(), ...[...this.topics.values()].flatMap((topic) => topic.subscriptions)];
  }

  /** Every message queue, sub-queues included. */
  allQueues(): MessageQueue[] {
    return this.receivables().flatMap((entity) => entity.queues);
  }

  /** Calls `listener` for every entity deleted (a topic's subscriptions first, then the topic). */
  onEntityRemoved(listener: (entity: AnyEntity) => void): void {
    this.removalListeners.push(listener);
  }

  /**
   * What an AMQP address names: `$cbs`, an entity (`q`, `t`, `t/Subscriptions/s`, with
   * `/$DeadLetterQueue` or `/$Transfer/$DeadLetterQueue`), or its `/$management` node. Names are
   * case-insensitive, as in Service Bus, and may contain `/`.
   */
  resolve(address: string): ResolvedAddress | undefined {
    const parts = trimChars(address, '/').split('/');
    if (parts.length === 1 && parts[0]!.toLowerCase() === '$cbs') return { kind: 'cbs' };
    const management = parts.length > 1 && parts[parts.length - 1]!.toLowerCase() === '$management';
    if (management) parts.pop();
    const node = this.resolveNode(parts);
    if (!node) return undefined;
    return management ? { kind: 'management', node } : { kind: 'entity', node };
  }

  /** A receivable entity by path (`orders`, `events/Subscriptions/vision`, or the shorthand `events/vision`). */
  findReceivable(path: string): ReceivableEntity | undefined {
    const parts = trimChars(path, '/').split('/');
    const receivable = (node: EntityNode | undefined): ReceivableEntity | undefined =>
      node && node.queue && node.queue === node.entity?.active ? node.entity : undefined;
    const direct = receivable(this.resolveNode(parts));
    if (direct || parts.length < 2) return direct;
    return receivable(this.resolveNode([...parts.slice(0, -1), 'Subscriptions', parts[parts.length - 1]!]));
  }

  /** A queue or topic by name (case-insensitive). */
  findSendTarget(name: string): QueueEntity | TopicEntity | undefined {
    const key = name.toLowerCase();
    return this.queues.get(key) ?? this.topics.get(key);
  }

  private resolveNode(parts: string[]): EntityNode | undefined {
    const lower = parts.map((part) => part.toLowerCase());
    // Only the first segments that fit in a queue or topic name can be one: trying every prefix of a client's address
    // cost (segments)² — 20,000 slashes in an attach held the broker for 19 s.
    let longest = 0;
    for (let chars = 0; longest < lower.length; longest++) {
      chars += (longest ? 1 : 0) + lower[longest]!.length;
      if (chars > entityLimits.entityNameLength) break;
    }
    // Queue and topic names may contain "/": the longest name that exists wins (sub-entity segments are reserved).
    for (let length = longest; length >= 1; length--) {
      const name = lower.slice(0, length).join('/');
      const queue = this.queues.get(name);
      if (queue) return this.subNode(queue, lower.slice(length), true);
      const topic = this.topics.get(name);
      if (!topic) continue;
      const rest = lower.slice(length);
      if (!rest.length) return { path: topic.name, armId: topic.armId, sendTarget: topic };
      if (rest[0] !== 'subscriptions' || rest.length < 2) return undefined;
      const subscription = topic.subscription(rest[1]!);
      return subscription ? this.subNode(subscription, rest.slice(2), false) : undefined;
    }
    return undefined;
  }

  private subNode(entity: ReceivableEntity, rest: string[], sendable: boolean): EntityNode | undefined {
    const base = { armId: entity.armId, entity };
    if (!rest.length) return { ...base, path: entity.path, queue: entity.active, ...(sendable ? { sendTarget: entity as QueueEntity } : {}) };
    if (rest.length === 1 && rest[0] === '$deadletterqueue') return { ...base, path: entity.deadLetter.path, queue: entity.deadLetter };
    if (rest.length === 2 && rest[0] === '$transfer' && rest[1] === '$deadletterqueue') {
      return { ...base, path: entity.transferDeadLetter.path, queue: entity.transferDeadLetter };
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends messages to a queue or topic. Everything is checked before anything is enqueued, so a send
   * is all or nothing. Duplicates (duplicate detection) are dropped silently, as in Service Bus.
   *
   * @returns the sequence number each message got from `target` (`undefined` for dropped duplicates).
   * @throws {BrokerError} e.g. `not-allowed` for a message without session id to a session entity,
   *   `entity-disabled`, `quota-exceeded` when the entity is full.
   */
  send(target: QueueEntity | TopicEntity, messages: IncomingMessage[], now: number): (number | undefined)[] {
    checkSendable(target);
    target.accessedAt = now;
    let incoming = 0;
    const planned = messages.map((message) => {
      const amqp = withMessageId(message.amqp);
      // The bytes as sent are stored (with an assigned id apart): no message is encoded again.
      const payload = message.payload ?? encodeMessage(message.amqp);
      incoming += payload.length;
      const assignedMessageId = amqp === message.amqp ? undefined : (amqp.message_id as string);
      const placements: Placement[] = [];
      this.plan(target, amqp, 0, Number.POSITIVE_INFINITY, placements);
      for (const placement of placements) {
        if (placement.amqp !== amqp) continue;
        placement.payload = payload;
        placement.assignedMessageId = assignedMessageId;
      }
      return { amqp, placements, scheduledAt: scheduledTime(amqp, now) };
    });
    checkSize(target, incoming);
    return planned.map(({ amqp, placements, scheduledAt }) => {
      if (target.requiresDuplicateDetection && this.isDuplicate(target, messageIdText(amqp.message_id)!, now)) return undefined;
      return this.apply(target, placements, scheduledAt, now, undefined);
    });
  }

  /** Schedules messages (`$management` schedule-message); returns their sequence numbers. */
  schedule(target: QueueEntity | TopicEntity, messages: IncomingMessage[], now: number): number[] {
    return this.send(target, messages, now).map((sequenceNumber) => sequenceNumber ?? 0);
  }

  /** Cancels scheduled messages by sequence number (unknown ones are ignored). */
  cancelScheduled(target: QueueEntity | TopicEntity, sequenceNumbers: number[]): void {
    const queues = target.kind === 'queue' ? [target.active] : target.subscriptions.map((s) => s.active);
    for (const sequenceNumber of sequenceNumbers) for (const queue of queues) queue.schedule.cancel(sequenceNumber);
  }

  /** Which queues a message lands in, following rules and auto-forwarding; checks session ids. */
  private plan(target: SendTarget, amqp: AmqpMessage, hops: number, ttl: number, out: Placement[]): void {
    const ttlHere = Math.min(ttl, target.defaultMessageTimeToLiveInMs);
    if (target instanceof QueueEntity) {
      if (target.definition.forwardTo) return this.forward(target, target.definition.forwardTo, amqp, hops, ttlHere, out);
      checkSessionId(target.active, amqp);
      out.push({ queue: target.active, amqp, owner: target, ttl: ttlHere });
      return;
    }
    const topic = target as TopicEntity;
    const input = filterInput(amqp);
    for (const subscription of topic.subscriptions) {
      if (subscription.definition.status === 'Disabled') continue;
      const rule = subscription.definition.rules.find((candidate) => candidate.matches(input));
      if (!rule) continue;
      const copy = rule.compiledAction ? applyAction(amqp, rule.compiledAction.apply(input)) : amqp;
      const ttlSubscription = Math.min(ttlHere, subscription.definition.defaultMessageTimeToLiveInMs);
      if (subscription.definition.forwardTo) {
        this.forward(subscription, subscription.definition.forwardTo, copy, hops, ttlSubscription, out);
        continue;
      }
      checkSessionId(subscription.active, copy);
      out.push({ queue: subscription.active, amqp: copy, owner: topic, ttl: ttlSubscription });
    }
  }

  /**
   * Auto-forwarding: the message goes on to `to`, or, as in Service Bus, into the forwarding entity's
   * transfer dead-letter queue when `to` no longer exists, is disabled, or the chain exceeds four hops.
   */
  private forward(from: ReceivableEntity, to: string, amqp: AmqpMessage, hops: number, ttl: number, out: Placement[]): void {
    const target = this.findSendTarget(to);
    let reason: string | undefined;
    let description: string | undefined;
    if (hops + 1 > entityLimits.forwardingHops) {
      reason = transferReasons.hops;
      description = `The message passed through ${entityLimits.forwardingHops} auto-forwarding hops; ${from.path} cannot forward it to ${to}.`;
    } else if (!target) {
      reason = transferReasons.unavailable;
      description = `${from.path} forwards to ${to}, which does not exist.`;
    } else if (target.definition.status === 'Disabled' || target.definition.status === 'SendDisabled') {
      reason = transferReasons.unavailable;
      description = `${from.path} forwards to ${target.name}, which is ${target.definition.status}.`;
    }
    if (reason === undefined) return this.plan(target!, amqp, hops + 1, ttl, out);
    const properties = { ...amqp.application_properties, DeadLetterReason: reason, DeadLetterErrorDescription: description };
    out.push({ queue: from.transferDeadLetter, amqp: { ...amqp, application_properties: properties }, owner: from.sequenceOwner, ttl: Number.POSITIVE_INFINITY });
  }

  /** Enqueues planned placements; every entity a message enters gives it one sequence number. */
  private apply(target: SendTarget, placements: Placement[], scheduledAt: number | undefined, now: number, deadLetterSource: string | undefined): number {
    const sequenceNumbers = new Map<SendTarget, number>([[target, this.nextSequenceNumber(target)]]);
    for (const placement of placements) {
      let sequenceNumber = sequenceNumbers.get(placement.owner);
      if (sequenceNumber === undefined) {
        sequenceNumber = this.nextSequenceNumber(placement.owner);
        sequenceNumbers.set(placement.owner, sequenceNumber);
      }
      const enqueuedAt = scheduledAt ?? now;
      const headerTtl = typeof placement.amqp.ttl === 'number' && placement.amqp.ttl > 0 ? placement.amqp.ttl : Number.POSITIVE_INFINITY;
      const ttl = Math.min(headerTtl, placement.ttl);
      const message = new StoredMessage(
        sequenceNumber,
        placement.amqp,
        enqueuedAt,
        enqueuedAt + ttl,
        scheduledAt,
        false,
        0,
        sessionIdOf(placement.amqp),
        deadLetterSource,
        placement.queue,
      );
      message.payload = placement.payload;
      message.assignedMessageId = placement.assignedMessageId;
      placement.queue.add(message, now);
    }
    return sequenceNumbers.get(target)!;
  }

  private nextSequenceNumber(target: SendTarget): number {
    target.lastSequenceNumber++;
    this.store.putSequence(target.storeKey, target.lastSequenceNumber);
    return target.lastSequenceNumber;
  }

  private isDuplicate(target: SendTarget, messageId: string, now: number): boolean {
    const seenUntil = target.duplicates.get(messageId);
    if (seenUntil !== undefined && seenUntil > now) return true;
    const until = now + target.duplicateDetectionHistoryTimeWindowInMs;
    target.duplicates.set(messageId, until);
    this.store.putDuplicate(target.storeKey, messageId, until);
    if (target.duplicates.size % 1024 === 0) {
      for (const [id, expiry] of target.duplicates) if (expiry <= now) target.duplicates.delete(id);
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------------
  // Dead-lettering and resubmitting

  /** Moves a message out of `queue` into its entity's dead-letter queue (or where those are forwarded). */
  private deadLetter(queue: MessageQueue, message: StoredMessage, reason: string | undefined, description: string | undefined): void {
    const entity = this.receivables().find((candidate) => candidate.active === queue)!;
    const now = Date.now();
    queue.remove(message);
    const amqp: AmqpMessage = {
      ...message.amqp,
      application_properties: {
        ...message.amqp.application_properties,
        ...(reason !== undefined ? { DeadLetterReason: reason } : {}),
        ...(description !== undefined ? { DeadLetterErrorDescription: description } : {}),
      },
    };
    const forwardTo = entity.definition.forwardDeadLetteredMessagesTo;
    const target = forwardTo ? this.findSendTarget(forwardTo) : undefined;
    if (target) {
      try {
        checkSendable(target);
        const placements: Placement[] = [];
        this.plan(target, amqp, 1, Number.POSITIVE_INFINITY, placements);
        this.apply(target, placements, undefined, now, entity.path);
        return;
      } catch (error) {
        // A dead letter that cannot be forwarded stays in the entity's transfer dead-letter queue.
        this.options.fail(error);
      }
    }
    if (forwardTo) {
      entity.transferDeadLetter.add(deadLettered(message, amqp, entity.transferDeadLetter), now);
      return;
    }
    entity.deadLetter.add(deadLettered(message, amqp, entity.deadLetter), now);
  }

  /**
   * Moves every dead-lettered message of an entity back to it (operator resubmit), without its
   * dead-letter reason, with a new sequence number. Messages that cannot go back (see
   * {@link resubmitCounts}) stay: `kept` counts them, `lockedKept` and `withoutSessionIdKept` by the reason, as
   * {@link resubmitCounts} does.
   */
  resubmit(entity: ReceivableEntity): { resubmitted: number; kept: number; lockedKept: number; withoutSessionIdKept: number } {
    const now = Date.now();
    let resubmitted = 0;
    const kept = { locked: 0, withoutSessionId: 0 };
    for (const message of [...entity.deadLetter.messages.values()].sort((a, b) => a.sequenceNumber - b.sequenceNumber)) {
      const blocker = resubmitBlocker(entity, message);
      if (blocker) {
        kept[blocker]++;
        continue;
      }
      const properties = { ...message.amqp.application_properties };
      delete properties.DeadLetterReason;
      delete properties.DeadLetterErrorDescription;
      const amqp = { ...message.amqp, application_properties: properties };
      entity.deadLetter.remove(message);
      const owner = entity.sequenceOwner;
      this.apply(owner, [{ queue: entity.active, amqp, owner, ttl: entity.definition.defaultMessageTimeToLiveInMs }], undefined, now, undefined);
      resubmitted++;
    }
    return { resubmitted, kept: kept.locked + kept.withoutSessionId, lockedKept: kept.locked, withoutSessionIdKept: kept.withoutSessionId };
  }

  /**
   * What {@link resubmit} would do now: how many of the entity's dead-lettered messages go back, and why the others
   * stay. Each message is counted once; one without the session id a session entity requires counts there even when
   * it is locked too, as no receiver's settling lets it go back.
   */
  resubmitCounts(entity: ReceivableEntity): { resubmittable: number; locked: number; withoutSessionId: number } {
    const counts = { resubmittable: 0, locked: 0, withoutSessionId: 0 };
    for (const message of entity.deadLetter.messages.values()) counts[resubmitBlocker(entity, message) ?? 'resubmittable']++;
    return counts;
  }

  // -------------------------------------------------------------------------------------------------
  // Entities at run time (the management API). Every change is written to the store; callers answer once
  // it is committed (`store.afterCommit`).

  /** Creates a queue. @throws {BrokerError} `entity-already-exists` when a queue or topic has the name. */
  createQueue(definition: QueueDefinition, now: number): QueueEntity {
    this.checkNameFree(definition.name);
    return this.persist(this.addQueue(definition, 'runtime', now));
  }

  /** Creates a topic (without subscriptions). @throws {BrokerError} `entity-already-exists` */
  createTopic(definition: TopicProperties, now: number): TopicEntity {
    this.checkNameFree(definition.name);
    return this.persist(this.addTopic(definition, 'runtime', now));
  }

  /** Creates a subscription of `topic`. @throws {BrokerError} `entity-already-exists` */
  createSubscription(topic: TopicEntity, definition: SubscriptionDefinition, now: number): SubscriptionEntity {
    if (topic.subscription(definition.name)) {
      throw new BrokerError('entity-already-exists', `The messaging entity '${topic.name}/Subscriptions/${definition.name}' already exists.`);
    }
    return this.persist(this.addSubscription(topic, definition, 'runtime', now));
  }

  /**
   * Replaces an entity's properties (its rules stay: they change through {@link putRule} and
   * {@link removeRule}). The definition object is changed in place: its sub-queues and the router read it.
   */
  update<E extends AnyEntity>(entity: E, definition: E['definition'], now: number): E {
    const current = entity.definition as unknown as Record<string, unknown>;
    const next = { ...definition, ...(entity.kind === 'subscription' ? { rules: entity.definition.rules } : {}) } as Record<string, unknown>;
    for (const key of Object.keys(current)) if (!(key in next)) delete current[key];
    Object.assign(current, next);
    entity.updatedAt = now;
    return this.persist(entity);
  }

  /** Adds a rule to a subscription, or replaces the rule of the same name; routing uses it from the next send. */
  putRule(subscription: SubscriptionEntity, rule: RuleDefinition, now: number): void {
    const rules = subscription.definition.rules;
    const index = rules.findIndex((existing) => existing.name.toLowerCase() === rule.name.toLowerCase());
    if (index >= 0) rules[index] = rule;
    else rules.push(rule);
    subscription.updatedAt = now;
    this.persist(subscription);
  }

  /** The `entity-not-found` refusal of `uri` (an entity, or a rule below one), naming this namespace's home's command. */
  notFound(uri: string): BrokerError {
    return entityNotFound(uri, this.options.home);
  }

  /** Removes a rule. @throws {BrokerError} `entity-not-found` naming the rule. */
  removeRule(subscription: SubscriptionEntity, name: string, now: number): void {
    const rules = subscription.definition.rules;
    const index = rules.findIndex((rule) => rule.name.toLowerCase() === name.toLowerCase());
    if (index < 0) throw this.notFound(`${subscription.path}/Rules/${name}`);
    rules.splice(index, 1);
    subscription.updatedAt = now;
    this.persist(subscription);
  }

  /**
   * Deletes an entity with its messages (a topic with its subscriptions). Links attached to it are
   * detached by the removal listeners (the broker).
   */
  delete(entity: AnyEntity): void {
    if (entity.kind === 'topic') {
      for (const subscription of [...entity.subscriptions]) this.delete(subscription);
      this.topics.delete(entity.name.toLowerCase());
      this.dropState(entity, []);
    } else {
      if (entity.kind === 'queue') this.queues.delete(entity.name.toLowerCase());
      else entity.topic.subscriptions.splice(entity.topic.subscriptions.indexOf(entity), 1);
      const error = this.notFound(entity.path);
      for (const queue of entity.queues) {
        queue.stop(error);
        queue.purge();
      }
      this.dropState(entity, entity.queues.map((queue) => queue.storeKey));
    }
    for (const listener of this.removalListeners) listener(entity);
  }

  private dropState(entity: AnyEntity, queueKeys: string[]): void {
    this.store.dropEntityState(entity.storeKey, queueKeys);
    this.store.deleteEntity(entity.storeKey);
  }

  private checkNameFree(name: string): void {
    const existing = this.findSendTarget(name);
    if (existing) throw new BrokerError('entity-already-exists', `The messaging entity '${existing.name}' already exists (as a ${existing.kind}).`);
  }

  private addQueue(definition: QueueDefinition, origin: EntityOrigin, now: number): QueueEntity {
    const entity = new QueueEntity(definition, `${this.options.namespaceId}/queues/${definition.name}`, this.context);
    this.queues.set(definition.name.toLowerCase(), lifecycle(entity, origin, now));
    return entity;
  }

  private addTopic(definition: TopicProperties, origin: EntityOrigin, now: number): TopicEntity {
    const entity = new TopicEntity(definition, `${this.options.namespaceId}/topics/${definition.name}`);
    this.topics.set(definition.name.toLowerCase(), lifecycle(entity, origin, now));
    return entity;
  }

  private addSubscription(topic: TopicEntity, definition: SubscriptionDefinition, origin: EntityOrigin, now: number): SubscriptionEntity {
    const entity = new SubscriptionEntity({ ...definition, topic: topic.name }, topic, `${topic.armId}/subscriptions/${definition.name}`, this.context);
    topic.subscriptions.push(lifecycle(entity, origin, now));
    return entity;
  }

  private persist<E extends AnyEntity>(entity: E): E {
    this.store.putEntity({
      key: entity.storeKey,
      kind: entity.kind,
      origin: entity.origin,
      definition: encodeDefinition(entity.definition),
      createdAt: entity.createdAt,
      updatedAt: entity.updatedAt,
      accessedAt: entity.accessedAt,
    });
    return entity;
  }

  // -------------------------------------------------------------------------------------------------
  // Start-up and stop

  /**
   * Loads entities created at run time, then messages, sequence counters, session states and
   * duplicate-detection history from the store. Entities of the topology file keep their stored creation
   * time but take the file's definition; stored entities of the file that it no longer has are forgotten
   * (their messages stay on disk).
   */
  load(now: number): LoadSummary {
    const contents = this.store.load(now);
    this.createdAt = contents.createdAt;
    const records = new Map(contents.entities.map((record) => [record.key, record]));
    const unreadable: string[] = [];
    const superseded: string[] = [];
    for (const entity of this.allEntities()) {
      const record = records.get(entity.storeKey);
      records.delete(entity.storeKey);
      if (record?.origin === 'runtime') superseded.push(entity.path);
      if (record) Object.assign(entity, { createdAt: record.createdAt, updatedAt: record.updatedAt, accessedAt: record.accessedAt });
      this.persist(entity);
    }
    let runtimeEntities = 0;
    // Queues and topics first: a subscription needs its topic.
    const ordered = [...records.values()].sort((a, b) => Number(a.kind === 'subscription') - Number(b.kind === 'subscription'));
    for (const record of ordered) {
      if (record.origin === 'topology') {
        this.store.deleteEntity(record.key);
        continue;
      }
      try {
        const entity = this.restore(record);
        Object.assign(entity, { createdAt: record.createdAt, updatedAt: record.updatedAt, accessedAt: record.accessedAt });
        runtimeEntities++;
      } catch (error) {
        unreadable.push(`${record.key}: ${(error as Error).message}`);
      }
    }

    const queuesByKey = new Map(this.allQueues().map((queue) => [queue.storeKey, queue]));
    const targets = new Map<string, SendTarget>([...this.queues.values(), ...this.topics.values()].map((target) => [target.storeKey, target]));
    for (const [key, last] of contents.sequences) {
      const target = targets.get(key);
      if (target) target.lastSequenceNumber = Math.max(target.lastSequenceNumber, last);
    }
    let loaded = 0;
    let orphaned = 0;
    for (const row of contents.messages) {
      const queue = queuesByKey.get(row.queue);
      if (!queue) {
        orphaned++;
        continue;
      }
      // The store's copy is used as it is: it stays referenced by the store's live set anyway.
      const bytes = Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload);
      const decoded = decodeMessageFast(bytes);
      const assignedMessageId = row.assignedMessageId !== null && (decoded.message_id === undefined || decoded.message_id === null) ? row.assignedMessageId : undefined;
      const message = new StoredMessage(
        row.sequenceNumber,
        assignedMessageId !== undefined ? { ...decoded, message_id: assignedMessageId } : decoded,
        row.enqueuedAt,
        row.expiresAt ?? Number.POSITIVE_INFINITY,
        row.scheduledAt ?? undefined,
        row.deferred,
        row.deliveryCount,
        row.sessionId ?? undefined,
        row.deadLetterSource ?? undefined,
        queue,
      );
      message.size = bytes.length;
      message.payload = bytes;
      message.assignedMessageId = assignedMessageId;
      queue.add(message, now, false);
      loaded++;
    }
    for (const { queue: key, sessionId, state } of contents.sessionStates) {
      const queue = queuesByKey.get(key);
      if (queue) queue.sessions.session(sessionId).state = Buffer.from(state);
    }
    for (const { entity, messageId, expiresAt } of contents.duplicates) targets.get(entity)?.duplicates.set(messageId, expiresAt);
    return { messages: loaded, orphaned, runtimeEntities, unreadable, superseded, storeNotes: contents.notes };
  }

  /** Every queue, topic and subscription. */
  allEntities(): AnyEntity[] {
    return [...this.queues.values(), ...[...this.topics.values()].flatMap((topic) => [topic, ...topic.subscriptions])];
  }

  private restore(record: EntityRecord): AnyEntity {
    switch (record.kind) {
      case 'queue': {
        const definition = decodeDefinition('queue', record.definition);
        if (this.findSendTarget(definition.name)) throw new Error(`the name "${definition.name}" is taken by an entity of the topology file`);
        return this.addQueue(definition, 'runtime', record.createdAt);
      }
      case 'topic': {
        const definition = decodeDefinition('topic', record.definition);
        if (this.findSendTarget(definition.name)) throw new Error(`the name "${definition.name}" is taken by an entity of the topology file`);
        return this.addTopic(definition, 'runtime', record.createdAt);
      }
      case 'subscription': {
        const definition = decodeDefinition('subscription', record.definition);
        const topic = this.topics.get(definition.topic.toLowerCase());
        if (!topic) throw new Error(`its topic "${definition.topic}" no longer exists`);
        if (topic.subscription(definition.name)) throw new Error(`the topology file defines a subscription "${definition.name}" of ${topic.name}`);
        return this.addSubscription(topic, definition, 'runtime', record.createdAt);
      }
    }
  }

  stop(): void {
    for (const queue of this.allQueues()) queue.stop();
    // Access times change with every send and receive: written once, at a clean stop.
    for (const entity of this.allEntities()) this.persist(entity);
  }
}

function lifecycle<E extends EntityLifecycle>(entity: E, origin: EntityOrigin, now: number): E {
  entity.origin = origin;
  entity.createdAt = now;
  entity.updatedAt = now;
  entity.accessedAt = now;
  return entity;
}

/** @throws {BrokerError} `entity-disabled` when the entity does not take messages now. */
function checkSendable(target: QueueEntity | TopicEntity): void {
  const status = target.definition.status;
  if (status === 'Disabled' || status === 'SendDisabled') {
    throw new BrokerError('entity-disabled', `Messaging entity '${target.path}' is currently disabled (status ${status}): it accepts no messages.`);
  }
}

/** @throws {BrokerError} `quota-exceeded` when `incoming` bytes would take the entity over its maximum size. */
function checkSize(target: QueueEntity | TopicEntity, incoming: number): void {
  const size = target.kind === 'queue' ? sizeOf(target) : target.subscriptions.reduce((sum, subscription) => sum + sizeOf(subscription), 0);
  const max = target.definition.maxSizeInMegabytes * 1024 * 1024;
  if (size + incoming <= max) return;
  throw new BrokerError(
    'quota-exceeded',
    `The maximum entity size has been reached or exceeded for ${target.kind === 'queue' ? 'Queue' : 'Topic'}: '${target.path}'. Size of entity in bytes:${size}, Max entity size in bytes:${max}. Receive or purge messages, or raise MaxSizeInMegabytes.`,
  );
}

/**
 * An entity's `CountDetails` as Service Bus reports them (ATOM's and ARM's): deferred messages count as active;
 * forwarding is immediate here, so nothing waits for transfer. A topic holds no message itself but reports its
 * scheduled ones: one per message sent, whatever the number of subscriptions holding a copy.
 */
export function countDetailsOf(entity: AnyEntity): MessageCounts {
  if (entity.kind === 'topic') {
    const scheduled = new Set<number>();
    for (const subscription of entity.subscriptions) {
      for (const message of subscription.active.messages.values()) if (message.scheduledAt !== undefined) scheduled.add(message.sequenceNumber);
    }
    return { active: 0, deadLetter: 0, scheduled: scheduled.size, transfer: 0, transferDeadLetter: 0 };
  }
  const { active, scheduled, deferred } = entity.active.counts();
  return {
    active: active + deferred,
    deadLetter: entity.deadLetter.messages.size,
    scheduled,
    transfer: 0,
    transferDeadLetter: entity.transferDeadLetter.messages.size,
  };
}

/** Bytes an entity holds (every sub-queue). */
export function sizeOf(entity: ReceivableEntity): number {
  return entity.queues.reduce((sum, queue) => sum + queue.sizeInBytes, 0);
}

/** A copy of `amqp` as a rule action left it (application and system properties). */
function applyAction(amqp: AmqpMessage, result: FilterInput): AmqpMessage {
  const system = result.system;
  const copy: AmqpMessage = { ...amqp, application_properties: { ...result.user } };
  const fields: [keyof FilterInput['system'], keyof AmqpMessage][] = [
    ['MessageId', 'message_id'],
    ['CorrelationId', 'correlation_id'],
    ['To', 'to'],
    ['ReplyTo', 'reply_to'],
    ['Label', 'subject'],
    ['ContentType', 'content_type'],
    ['SessionId', 'group_id'],
    ['ReplyToSessionId', 'reply_to_group_id'],
  ];
  const before = filterInput(amqp).system;
  for (const [name, field] of fields) {
    if (system[name] === before[name]) continue;
    if (system[name] === undefined) delete copy[field];
    else (copy as Record<string, unknown>)[field] = system[name];
  }
  return copy;
}

function deadLettered(message: StoredMessage, amqp: AmqpMessage, queue: MessageQueue): StoredMessage {
  // Messages in a dead-letter queue never expire.
  return new StoredMessage(
    message.sequenceNumber,
    amqp,
    message.enqueuedAt,
    Number.POSITIVE_INFINITY,
    undefined,
    false,
    message.deliveryCount,
    message.sessionId,
    message.deadLetterSource,
    queue,
  );
}

/** Service Bus assigns a message id when the sender sets none (the SDK relies on one for lock renewal). */
function withMessageId(message: AmqpMessage): AmqpMessage {
  if (message.message_id !== undefined && message.message_id !== null) return message;
  return { ...message, message_id: randomUUID().replace(/-/g, '') };
}

function scheduledTime(message: AmqpMessage, now: number): number | undefined {
  const value = message.message_annotations?.[annotations.scheduledEnqueueTime];
  const time = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : undefined;
  return time !== undefined && time > now ? time : undefined;
}

/**
 * Why a dead-lettered message cannot go back to its entity now, or undefined when it can: the entity requires sessions
 * and the message has no session id (its send would be refused), or a receiver of the dead-letter queue holds it
 * locked (it can still complete, abandon or dead-letter it).
 */
function resubmitBlocker(entity: ReceivableEntity, message: StoredMessage): 'withoutSessionId' | 'locked' | undefined {
  if (entity.active.requiresSession && message.sessionId === undefined) return 'withoutSessionId';
  return message.lock ? 'locked' : undefined;
}

function sessionIdOf(message: AmqpMessage): string | undefined {
  return typeof message.group_id === 'string' ? message.group_id : undefined;
}

function checkSessionId(queue: MessageQueue, message: AmqpMessage): void {
  if (queue.requiresSession && sessionIdOf(message) === undefined) {
    throw new BrokerError(
      'not-allowed',
      `The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value. Entity: ${queue.path}.`,
    );
  }
}

/** What rules see of a message. */
export function filterInput(message: AmqpMessage): FilterInput {
  const text = (value: unknown): string | undefined => (value === undefined || value === null ? undefined : (messageIdText(value) ?? String(value)));
  const system: FilterInput['system'] = {};
  const set = (key: keyof FilterInput['system'], value: unknown): void => {
    const v = text(value);
    if (v !== undefined) system[key] = v;
  };
  set('MessageId', message.message_id);
  set('CorrelationId', message.correlation_id);
  set('To', message.to);
  set('ReplyTo', message.reply_to);
  set('Label', message.subject);
  set('ContentType', message.content_type);
  set('SessionId', message.group_id);
  set('ReplyToSessionId', message.reply_to_group_id);
  return { system, user: message.application_properties ?? {} };
}

