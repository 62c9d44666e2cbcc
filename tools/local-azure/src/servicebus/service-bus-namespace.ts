import { randomUUID } from 'node:crypto';
import { annotations, decodeMessage, encodeMessage, messageIdText, type AmqpMessage, type IncomingMessage } from './amqp-message.js';
import { BrokerError } from './broker-error.js';
import type { MessageStore } from './message-store.js';
import { MessageQueue, StoredMessage, type QueueContext } from './message-queue.js';
import type { FilterInput } from './sql-filter.js';
import type { QueueDefinition, ReceivableProperties, SubscriptionDefinition, TopicDefinition, Topology } from './topology.js';

/** A queue or topic: what senders send to. Assigns sequence numbers and detects duplicates. */
abstract class SendTarget {
  lastSequenceNumber = 0;
  readonly duplicates = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly armId: string,
    /** Store key of its sequence counter (and of its active queue, for queues). */
    readonly storeKey: string,
    readonly requiresDuplicateDetection: boolean,
    readonly duplicateDetectionHistoryTimeWindowInMs: number,
    readonly defaultMessageTimeToLiveInMs: number,
  ) {}

  abstract readonly kind: 'queue' | 'topic';
}

/** A queue with its dead-letter and transfer dead-letter sub-queues. */
export class QueueEntity extends SendTarget {
  readonly kind = 'queue';
  readonly active: MessageQueue;
  readonly deadLetter: MessageQueue;
  readonly transferDeadLetter: MessageQueue;

  constructor(
    readonly definition: QueueDefinition,
    armId: string,
    context: QueueContext,
  ) {
    const key = `queue:${definition.name.toLowerCase()}`;
    super(
      definition.name,
      armId,
      key,
      definition.requiresDuplicateDetection,
      definition.duplicateDetectionHistoryTimeWindowInMs,
      definition.defaultMessageTimeToLiveInMs,
    );
    [this.active, this.deadLetter, this.transferDeadLetter] = subQueues(definition.name, key, definition, context);
  }

  get path(): string {
    return this.name;
  }

  get sequenceOwner(): SendTarget {
    return this;
  }
}

/** A topic and its subscriptions. */
export class TopicEntity extends SendTarget {
  readonly kind = 'topic';
  readonly subscriptions: SubscriptionEntity[];

  constructor(
    readonly definition: TopicDefinition,
    armId: string,
    context: QueueContext,
  ) {
    super(
      definition.name,
      armId,
      `topic:${definition.name.toLowerCase()}`,
      definition.requiresDuplicateDetection,
      definition.duplicateDetectionHistoryTimeWindowInMs,
      definition.defaultMessageTimeToLiveInMs,
    );
    this.subscriptions = definition.subscriptions.map(
      (subscription) => new SubscriptionEntity(subscription, this, `${armId}/subscriptions/${subscription.name}`, context),
    );
  }
}

/** A topic subscription with its sub-queues and rules. */
export class SubscriptionEntity {
  readonly kind = 'subscription';
  readonly active: MessageQueue;
  readonly deadLetter: MessageQueue;
  readonly transferDeadLetter: MessageQueue;

  constructor(
    readonly definition: SubscriptionDefinition,
    readonly topic: TopicEntity,
    readonly armId: string,
    context: QueueContext,
  ) {
    const path = `${topic.name}/Subscriptions/${definition.name}`;
    const key = `subscription:${topic.name.toLowerCase()}/${definition.name.toLowerCase()}`;
    [this.active, this.deadLetter, this.transferDeadLetter] = subQueues(path, key, definition, context);
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
}

/** An entity receivers attach to. */
export type ReceivableEntity = QueueEntity | SubscriptionEntity;

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
  /** The encoding of `amqp`, shared by the placements of one message that no rule action changed. */
  payload?: Buffer;
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
}

/**
 * The entities of the local namespace and how messages move between them: sending with sequence
 * numbers, duplicate detection, TTL, scheduling, topic fan-out through rules, auto-forwarding and
 * dead-lettering; loading everything back from the store at start-up.
 */
export class ServiceBusNamespace {
  readonly queues = new Map<string, QueueEntity>();
  readonly topics = new Map<string, TopicEntity>();
  readonly store: MessageStore;
  private readonly context: QueueContext;

  constructor(private readonly options: ServiceBusNamespaceOptions) {
    this.store = options.store;
    this.context = {
      store: options.store,
      deadLetter: (queue, message, reason, description) => this.deadLetter(queue, message, reason, description),
      fail: options.fail,
    };
    for (const queue of options.topology.queues) {
      this.queues.set(queue.name.toLowerCase(), new QueueEntity(queue, `${options.namespaceId}/queues/${queue.name}`, this.context));
    }
    for (const topic of options.topology.topics) {
      this.topics.set(topic.name.toLowerCase(), new TopicEntity(topic, `${options.namespaceId}/topics/${topic.name}`, this.context));
    }
  }

  /** Every queue and subscription. */
  receivables(): ReceivableEntity[] {
    return [...this.queues.values(), ...[...this.topics.values()].flatMap((topic) => topic.subscriptions)];
  }

  /** Every message queue, sub-queues included. */
  allQueues(): MessageQueue[] {
    return this.receivables().flatMap((entity) => [entity.active, entity.deadLetter, entity.transferDeadLetter]);
  }

  /**
   * What an AMQP address names: `$cbs`, an entity (`q`, `t`, `t/Subscriptions/s`, with
   * `/$DeadLetterQueue` or `/$Transfer/$DeadLetterQueue`), or its `/$management` node. Names are
   * case-insensitive, as in Service Bus.
   */
  resolve(address: string): ResolvedAddress | undefined {
    const parts = address.replace(/^\/+|\/+$/g, '').split('/');
    if (parts.length === 1 && parts[0]!.toLowerCase() === '$cbs') return { kind: 'cbs' };
    const management = parts.length > 1 && parts[parts.length - 1]!.toLowerCase() === '$management';
    if (management) parts.pop();
    const node = this.resolveNode(parts);
    if (!node) return undefined;
    return management ? { kind: 'management', node } : { kind: 'entity', node };
  }

  /** A receivable entity by path (`orders`, `events/vision`, `events/Subscriptions/vision`). */
  findReceivable(path: string): ReceivableEntity | undefined {
    const parts = path.replace(/^\/+|\/+$/g, '').split('/');
    if (parts.length === 2) parts.splice(1, 0, 'Subscriptions');
    const node = this.resolveNode(parts);
    return node && node.queue && node.queue === node.entity?.active ? node.entity : undefined;
  }

  private resolveNode(parts: string[]): EntityNode | undefined {
    const [name, ...rest] = parts.map((part) => part.toLowerCase());
    const queue = this.queues.get(name ?? '');
    if (queue) return this.subNode(queue, rest, true);
    const topic = this.topics.get(name ?? '');
    if (!topic) return undefined;
    if (!rest.length) return { path: topic.name, armId: topic.armId, sendTarget: topic };
    if (rest[0] !== 'subscriptions' || rest.length < 2) return undefined;
    const subscription = topic.subscriptions.find((s) => s.name.toLowerCase() === rest[1]);
    return subscription ? this.subNode(subscription, rest.slice(2), false) : undefined;
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
   * @throws {BrokerError} e.g. `not-allowed` for a message without session id to a session entity.
   */
  send(target: QueueEntity | TopicEntity, messages: IncomingMessage[], now: number): (number | undefined)[] {
    const planned = messages.map((message) => {
      const amqp = withMessageId(message.amqp);
      // Encoded once here, written once per queue it lands in.
      const payload = amqp === message.amqp && message.payload ? message.payload : encodeMessage(amqp);
      const placements: Placement[] = [];
      this.plan(target, amqp, 0, Number.POSITIVE_INFINITY, placements);
      for (const placement of placements) if (placement.amqp === amqp) placement.payload = payload;
      return { amqp, placements, scheduledAt: scheduledTime(amqp, now) };
    });
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
    for (const sequenceNumber of sequenceNumbers) for (const queue of queues) queue.cancelScheduled(sequenceNumber);
  }

  /** Which queues a message lands in, following rules and auto-forwarding; checks session ids. */
  private plan(target: SendTarget, amqp: AmqpMessage, hops: number, ttl: number, out: Placement[]): void {
    const ttlHere = Math.min(ttl, target.defaultMessageTimeToLiveInMs);
    if (target instanceof QueueEntity) {
      if (target.definition.forwardTo) return this.plan(this.sendTarget(target.definition.forwardTo), amqp, hops + 1, ttlHere, out);
      checkSessionId(target.active, amqp);
      out.push({ queue: target.active, amqp, owner: target, ttl: ttlHere });
      return;
    }
    const topic = target as TopicEntity;
    const input = filterInput(amqp);
    for (const subscription of topic.subscriptions) {
      const rule = subscription.definition.rules.find((candidate) => candidate.matches(input));
      if (!rule) continue;
      const copy = rule.action ? { ...amqp, application_properties: rule.action.apply(input) } : amqp;
      const ttlSubscription = Math.min(ttlHere, subscription.definition.defaultMessageTimeToLiveInMs);
      if (subscription.definition.forwardTo) {
        this.plan(this.sendTarget(subscription.definition.forwardTo), copy, hops + 1, ttlSubscription, out);
        continue;
      }
      checkSessionId(subscription.active, copy);
      out.push({ queue: subscription.active, amqp: copy, owner: topic, ttl: ttlSubscription });
    }
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

  private sendTarget(name: string): QueueEntity | TopicEntity {
    const target = this.queues.get(name.toLowerCase()) ?? this.topics.get(name.toLowerCase());
    if (!target) throw new BrokerError('entity-not-found', `The messaging entity '${name}' could not be found.`);
    return target;
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
    if (forwardTo) {
      try {
        const target = this.sendTarget(forwardTo);
        const placements: Placement[] = [];
        this.plan(target, amqp, 1, Number.POSITIVE_INFINITY, placements);
        this.apply(target, placements, undefined, now, entity.path);
        return;
      } catch (error) {
        // A dead letter that cannot be forwarded stays in the entity's transfer dead-letter queue.
        this.options.fail(error);
        entity.transferDeadLetter.add(deadLettered(message, amqp, entity.transferDeadLetter), now);
        return;
      }
    }
    entity.deadLetter.add(deadLettered(message, amqp, entity.deadLetter), now);
  }

  /**
   * Moves every dead-lettered message of an entity back to it (operator resubmit), without its
   * dead-letter reason, with a new sequence number. Messages that cannot go back (no session id for
   * a session entity) stay.
   */
  resubmit(entity: ReceivableEntity): { resubmitted: number; kept: number } {
    const now = Date.now();
    let resubmitted = 0;
    let kept = 0;
    for (const message of [...entity.deadLetter.messages.values()].sort((a, b) => a.sequenceNumber - b.sequenceNumber)) {
      if (message.lock || (entity.active.requiresSession && message.sessionId === undefined)) {
        kept++;
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
    return { resubmitted, kept };
  }

  // -------------------------------------------------------------------------------------------------
  // Start-up and stop

  /** Loads messages, sequence counters, session states and duplicate-detection history from the store. */
  load(now: number): { messages: number; orphaned: number } {
    const contents = this.store.load(now);
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
      const message = new StoredMessage(
        row.sequenceNumber,
        decodeMessage(Buffer.from(row.payload)),
        row.enqueuedAt,
        row.expiresAt ?? Number.POSITIVE_INFINITY,
        row.scheduledAt ?? undefined,
        row.deferred,
        row.deliveryCount,
        row.sessionId ?? undefined,
        row.deadLetterSource ?? undefined,
        queue,
      );
      queue.add(message, now, false);
      loaded++;
    }
    for (const { queue: key, sessionId, state } of contents.sessionStates) {
      const queue = queuesByKey.get(key);
      if (queue) queue.session(sessionId).state = Buffer.from(state);
    }
    for (const { entity, messageId, expiresAt } of contents.duplicates) targets.get(entity)?.duplicates.set(messageId, expiresAt);
    return { messages: loaded, orphaned };
  }

  stop(): void {
    for (const queue of this.allQueues()) queue.stop();
  }
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
export function withMessageId(message: AmqpMessage): AmqpMessage {
  if (message.message_id !== undefined && message.message_id !== null) return message;
  return { ...message, message_id: randomUUID().replace(/-/g, '') };
}

function scheduledTime(message: AmqpMessage, now: number): number | undefined {
  const value = message.message_annotations?.[annotations.scheduledEnqueueTime];
  const time = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : undefined;
  return time !== undefined && time > now ? time : undefined;
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

