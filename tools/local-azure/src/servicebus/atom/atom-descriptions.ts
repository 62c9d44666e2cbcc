import {
  childNameProblem,
  defaultQueue,
  defined,
  defaultSubscription,
  defaultTopic,
  entityLimits,
  entityStatuses,
  type EntityStatus,
  type QueueDefinition,
  type ReceivableProperties,
  type SubscriptionDefinition,
  type TopicProperties,
} from '../entities/entity-definitions.js';
import { formatIsoDuration, parseIsoDuration } from '../entities/iso-duration.js';
import {
  correlationFields,
  isEmptyCorrelationFilter,
  type CorrelationFilterSpec,
  type CorrelationPropertyValue,
  type RuleActionSpec,
  type RuleDefinition,
  type RuleFilterSpec,
  type RuleSpec,
} from '../filters/rule-definition.js';
import type { SqlParameterValue } from '../filters/sql-filter.js';
import { attributeValue, childElement, childText, escapeXml, instanceType, xmlNamespaces, type XmlElement } from './xml.js';
import { trimChars } from '../../util/trim-chars.js';

/**
 * Entity descriptions as the Service Bus management API (ATOM) writes them: reading a request's
 * `QueueDescription`, `TopicDescription`, `SubscriptionDescription` or `RuleDescription` into a
 * definition, and writing a definition (with runtime figures) back. Element names, order and value
 * formats follow what `@azure/service-bus`'s administration client sends and parses
 * (shared/notes/servicebus-management-protocol.md §4–§6).
 */

/** A description field the request got wrong; `message` is the detail the client sees. */
export class DescriptionError extends Error {
  override readonly name = 'DescriptionError';
}

/** The fixed values of the description format, in one place. */
const formats = {
  /** .NET's TimeSpan.MaxValue as Service Bus prints it: "never" for TTL and auto-delete. */
  maxTimeSpan: 'P10675199DT2H48M5.4775807S',
  /** Durations this long or longer mean TimeSpan.MaxValue (infinite). */
  infiniteFromInMs: 10_000_000 * 86_400_000,
  /** Compatibility level Service Bus reports for SQL filters and actions. */
  sqlCompatibilityLevel: 20,
  /** Longest `UserMetadata` Service Bus accepts. */
  userMetadataMaxLength: 1024,
} as const;

/** Runtime figures of a queue or subscription. */
export interface MessageCounts {
  active: number;
  deadLetter: number;
  scheduled: number;
  transfer: number;
  transferDeadLetter: number;
}

/** What a response reports about an entity besides its definition. */
export interface EntityRuntime {
  createdAt: number;
  updatedAt: number;
  accessedAt: number;
  sizeInBytes: number;
  counts: MessageCounts;
  /** Topics only. */
  subscriptionCount?: number;
}

// -------------------------------------------------------------------------------------------------
// Reading requests

/** How a forwarding target in a request names its entity (`sb://host/name` or `name`). */
export function forwardTargetName(value: string | undefined): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (!/^(sb|https?):\/\//i.test(text)) return text;
  try {
    return trimChars(decodeURIComponent(new URL(text).pathname), '/') || undefined;
  } catch {
    throw new DescriptionError(`The forwarding destination '${text}' is not a valid entity address.`);
  }
}

/** Reads a `QueueDescription`; `existing` is the queue being updated (its fixed properties must not change). */
export function readQueue(element: XmlElement, name: string, existing?: QueueDefinition): QueueDefinition {
  const read = new FieldReader(element, 'Queue');
  const definition: QueueDefinition = {
    ...defaultQueue(name),
    ...readReceivable(read),
    ...defined({
      maxSizeInMegabytes: read.maxSize('MaxSizeInMegabytes'),
      duplicateDetectionHistoryTimeWindowInMs: read.duration('DuplicateDetectionHistoryTimeWindow', entityLimits.duplicateDetectionHistoryTimeWindowInMs),
      enableExpress: read.boolean('EnableExpress'),
      maxMessageSizeInKilobytes: read.integer('MaxMessageSizeInKilobytes', 1, 102_400),
    }),
  };
  read.fixed(definition, existing, 'requiresDuplicateDetection', 'RequiresDuplicateDetection');
  read.fixed(definition, existing, 'requiresSession', 'RequiresSession');
  read.fixed(definition, existing, 'enablePartitioning', 'EnablePartitioning');
  read.noAuthorizationRules();
  return definition;
}

/** Reads a `TopicDescription`; `existing` is the topic being updated. */
export function readTopic(element: XmlElement, name: string, existing?: TopicProperties): TopicProperties {
  const read = new FieldReader(element, 'Topic');
  const definition: TopicProperties = {
    ...defaultTopic(name),
    ...defined({
      defaultMessageTimeToLiveInMs: read.duration('DefaultMessageTimeToLive', entityLimits.defaultMessageTimeToLiveInMs),
      maxSizeInMegabytes: read.maxSize('MaxSizeInMegabytes'),
      duplicateDetectionHistoryTimeWindowInMs: read.duration('DuplicateDetectionHistoryTimeWindow', entityLimits.duplicateDetectionHistoryTimeWindowInMs),
      enableBatchedOperations: read.boolean('EnableBatchedOperations'),
      status: read.status('Status'),
      userMetadata: read.userMetadata(),
      supportOrdering: read.boolean('SupportOrdering'),
      autoDeleteOnIdleInMs: read.duration('AutoDeleteOnIdle', entityLimits.autoDeleteOnIdleInMs),
      enableExpress: read.boolean('EnableExpress'),
      maxMessageSizeInKilobytes: read.integer('MaxMessageSizeInKilobytes', 1, 102_400),
    }),
  };
  read.fixed(definition, existing, 'requiresDuplicateDetection', 'RequiresDuplicateDetection');
  read.fixed(definition, existing, 'enablePartitioning', 'EnablePartitioning');
  read.noAuthorizationRules();
  return definition;
}

/**
 * Reads a `SubscriptionDescription` (without rules: the caller gives it its default rule, from
 * {@link readDefaultRule}, or keeps the rules of the subscription being updated).
 */
export function readSubscription(element: XmlElement, topic: string, name: string, existing?: SubscriptionDefinition): SubscriptionDefinition {
  const read = new FieldReader(element, 'Subscription');
  const definition: SubscriptionDefinition = {
    ...defaultSubscription(topic, name),
    ...readReceivable(read),
    ...defined({ deadLetteringOnFilterEvaluationExceptions: read.boolean('DeadLetteringOnFilterEvaluationExceptions') }),
  };
  read.fixed(definition, existing, 'requiresSession', 'RequiresSession');
  return definition;
}

/** The `DefaultRuleDescription` of a subscription being created, if the request gives one. */
export function readDefaultRule(element: XmlElement): RuleSpec | undefined {
  const rule = childElement(element, 'DefaultRuleDescription');
  if (!rule) return undefined;
  const name = childText(rule, 'Name')?.trim() || '$Default';
  const problem = childNameProblem(name);
  if (problem) throw new DescriptionError(`The rule name '${name}' ${problem}.`);
  return readRule(rule, name);
}

/** Reads a `RuleDescription` (its name comes from the address). */
export function readRule(element: XmlElement, name: string): RuleSpec {
  const filterElement = childElement(element, 'Filter');
  const actionElement = childElement(element, 'Action');
  const filter = filterElement ? readFilter(filterElement) : ({ type: 'sql', expression: '1=1' } as const);
  const action = actionElement ? readAction(actionElement) : undefined;
  return { name, filter, ...(action ? { action } : {}) };
}

function readFilter(element: XmlElement): RuleFilterSpec {
  const type = instanceType(element)?.localName ?? (childElement(element, 'SqlExpression') ? 'SqlFilter' : 'CorrelationFilter');
  switch (type) {
    case 'TrueFilter':
      return { type: 'true' };
    case 'FalseFilter':
      return { type: 'false' };
    case 'SqlFilter': {
      const expression = childText(element, 'SqlExpression')?.trim();
      if (!expression) throw new DescriptionError('A SqlFilter needs a SqlExpression.');
      const parameters = readKeyValues(childElement(element, 'Parameters'), 'Parameters');
      return { type: 'sql', expression, ...(parameters ? { parameters } : {}) };
    }
    case 'CorrelationFilter': {
      const filter: CorrelationFilterSpec = { type: 'correlation' };
      for (const [field] of correlationFields) {
        const value = presentText(element, correlationElement(field));
        if (value !== undefined) filter[field] = value;
      }
      const properties = readKeyValues(childElement(element, 'Properties'), 'Properties');
      if (properties) filter.properties = properties;
      if (isEmptyCorrelationFilter(filter)) throw new DescriptionError('A CorrelationFilter needs at least one property to match.');
      return filter;
    }
    default:
      throw new DescriptionError(`The filter type '${type}' is not supported: use SqlFilter, CorrelationFilter, TrueFilter or FalseFilter.`);
  }
}

function readAction(element: XmlElement): RuleActionSpec | undefined {
  const type = instanceType(element)?.localName ?? (childElement(element, 'SqlExpression') ? 'SqlRuleAction' : 'EmptyRuleAction');
  if (type === 'EmptyRuleAction') return undefined;
  if (type !== 'SqlRuleAction') throw new DescriptionError(`The rule action type '${type}' is not supported: use SqlRuleAction or EmptyRuleAction.`);
  const expression = childText(element, 'SqlExpression')?.trim();
  if (!expression) throw new DescriptionError('A SqlRuleAction needs a SqlExpression.');
  const parameters = readKeyValues(childElement(element, 'Parameters'), 'Parameters');
  return { expression, ...(parameters ? { parameters } : {}) };
}

/** `KeyValueOfstringanyType` entries: typed values of correlation properties and SQL parameters. */
function readKeyValues(element: XmlElement | undefined, field: string): Record<string, CorrelationPropertyValue & SqlParameterValue> | undefined {
  if (!element) return undefined;
  const entries = element.children.filter((child) => child.localName === 'KeyValueOfstringanyType');
  if (!entries.length) return undefined;
  const result: Record<string, CorrelationPropertyValue & SqlParameterValue> = {};
  for (const entry of entries) {
    const key = childText(entry, 'Key');
    const valueElement = childElement(entry, 'Value');
    if (key === undefined || !valueElement) throw new DescriptionError(`Each entry of ${field} needs a Key and a Value.`);
    const type = instanceType(valueElement);
    const text = valueElement.text;
    const typeName = type && type.namespace === xmlNamespaces.schema ? type.localName : (type?.localName ?? 'string');
    switch (typeName) {
      case 'string':
        result[key] = text;
        break;
      case 'boolean':
        if (!/^(true|false|1|0)$/i.test(text.trim())) throw new DescriptionError(`${field} '${key}': '${text}' is not a boolean.`);
        result[key] = /^(true|1)$/i.test(text.trim());
        break;
      case 'dateTime': {
        const date = new Date(text.trim());
        if (Number.isNaN(date.getTime())) throw new DescriptionError(`${field} '${key}': '${text}' is not a dateTime.`);
        result[key] = date;
        break;
      }
      case 'int':
      case 'long':
      case 'short':
      case 'byte':
      case 'unsignedInt':
      case 'unsignedLong':
      case 'unsignedShort':
      case 'unsignedByte':
      case 'double':
      case 'float':
      case 'decimal': {
        const number = Number(text.trim());
        if (!text.trim() || !Number.isFinite(number)) throw new DescriptionError(`${field} '${key}': '${text}' is not a number.`);
        result[key] = number;
        break;
      }
      default:
        throw new DescriptionError(`${field} '${key}': the value type '${typeName}' is not supported (string, boolean, dateTime or a number).`);
    }
  }
  return result;
}

function readReceivable(read: FieldReader): Partial<ReceivableProperties> {
  return defined({
    lockDurationInMs: read.duration('LockDuration', entityLimits.lockDurationInMs),
    maxDeliveryCount: read.integer('MaxDeliveryCount', entityLimits.maxDeliveryCount.min, entityLimits.maxDeliveryCount.max),
    defaultMessageTimeToLiveInMs: read.duration('DefaultMessageTimeToLive', entityLimits.defaultMessageTimeToLiveInMs),
    deadLetteringOnMessageExpiration: read.boolean('DeadLetteringOnMessageExpiration'),
    forwardTo: forwardTargetName(read.text('ForwardTo')),
    forwardDeadLetteredMessagesTo: forwardTargetName(read.text('ForwardDeadLetteredMessagesTo')),
    enableBatchedOperations: read.boolean('EnableBatchedOperations'),
    status: read.status('Status'),
    userMetadata: read.userMetadata(),
    autoDeleteOnIdleInMs: read.duration('AutoDeleteOnIdle', entityLimits.autoDeleteOnIdleInMs),
  });
}

/** Reads the typed fields of one description, refusing values Azure refuses. */
class FieldReader {
  constructor(
    private readonly element: XmlElement,
    private readonly kind: string,
  ) {}

  text(name: string): string | undefined {
    return presentText(this.element, name);
  }

  boolean(name: string): boolean | undefined {
    const text = this.text(name)?.trim();
    if (text === undefined || text === '') return undefined;
    if (!/^(true|false)$/i.test(text)) throw this.invalid(name, text, 'true or false');
    return text.toLowerCase() === 'true';
  }

  integer(name: string, min: number, max: number): number | undefined {
    const text = this.text(name)?.trim();
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw this.invalid(name, text, `an integer from ${min} to ${max}`);
    return value;
  }

  maxSize(name: string): number | undefined {
    const text = this.text(name)?.trim();
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    if (!(entityLimits.maxSizeInMegabytes as readonly number[]).includes(value)) throw this.invalid(name, text, `one of ${entityLimits.maxSizeInMegabytes.join(', ')} (Standard tier)`);
    return value;
  }

  duration(name: string, range: { min: number; max: number }): number | undefined {
    const text = this.text(name)?.trim();
    if (text === undefined || text === '') return undefined;
    const parsed = parseIsoDuration(text);
    if (parsed === undefined) throw this.invalid(name, text, 'an ISO 8601 duration such as PT30S, PT5M or P7D');
    const value = parsed >= formats.infiniteFromInMs ? Number.POSITIVE_INFINITY : parsed;
    if (value < range.min || value > range.max) {
      throw this.invalid(name, text, `from ${formatIsoDuration(range.min)} to ${Number.isFinite(range.max) ? formatIsoDuration(range.max) : formats.maxTimeSpan}`);
    }
    return value;
  }

  status(name: string): EntityStatus | undefined {
    const text = this.text(name)?.trim();
    if (text === undefined || text === '') return undefined;
    const status = entityStatuses.find((candidate) => candidate.toLowerCase() === text.toLowerCase());
    if (!status) throw this.invalid(name, text, entityStatuses.join(', '));
    return status;
  }

  userMetadata(): string | undefined {
    const text = this.text('UserMetadata');
    if (text !== undefined && text.length > formats.userMetadataMaxLength) {
      throw new DescriptionError(`The ${this.kind} property UserMetadata is longer than ${formats.userMetadataMaxLength} characters.`);
    }
    return text === '' ? undefined : text;
  }

  /** A property that cannot change once the entity exists: an update may repeat it, not change it. */
  fixed<D extends object, K extends keyof D & string>(definition: D, existing: D | undefined, key: K, name: string): void {
    const given = this.boolean(name);
    if (existing) {
      if (given !== undefined && given !== existing[key]) {
        throw new DescriptionError(`The value for the ${name} property of an existing ${this.kind} cannot be changed.`);
      }
      definition[key] = existing[key];
    } else if (given !== undefined) {
      definition[key] = given as D[K];
    }
  }

  noAuthorizationRules(): void {
    const rules = childElement(this.element, 'AuthorizationRules');
    if (rules?.children.length) {
      throw new DescriptionError(
        'Shared access authorization rules are not accepted: this namespace has local (SAS key) authentication disabled, as Keyless deploys it. Grant Azure Service Bus Data roles instead.',
      );
    }
  }

  private invalid(name: string, value: string, expected: string): DescriptionError {
    return new DescriptionError(`The value '${value}' of the ${this.kind} property ${name} is invalid: expected ${expected}.`);
  }
}

/** The text of a child element, unless it is absent or `i:nil="true"`. */
function presentText(element: XmlElement, name: string): string | undefined {
  const child = childElement(element, name);
  if (!child || attributeValue(child, xmlNamespaces.instance, 'nil') === 'true') return undefined;
  return child.text;
}

function correlationElement(field: (typeof correlationFields)[number][0]): string {
  return field === 'label' ? 'Label' : field[0]!.toUpperCase() + field.slice(1);
}


// -------------------------------------------------------------------------------------------------
// Writing responses

const descriptionNamespaces = `xmlns="${xmlNamespaces.serviceBus}" xmlns:i="${xmlNamespaces.instance}"`;

/** `<QueueDescription>` with the queue's properties and runtime figures. */
export function queueXml(queue: QueueDefinition, runtime: EntityRuntime, forwardUri: (name: string) => string): string {
  return (
    `<QueueDescription ${descriptionNamespaces}>` +
    element('LockDuration', timeSpan(queue.lockDurationInMs)) +
    element('MaxSizeInMegabytes', queue.maxSizeInMegabytes) +
    element('RequiresDuplicateDetection', queue.requiresDuplicateDetection) +
    element('RequiresSession', queue.requiresSession) +
    element('DefaultMessageTimeToLive', timeSpan(queue.defaultMessageTimeToLiveInMs)) +
    element('DeadLetteringOnMessageExpiration', queue.deadLetteringOnMessageExpiration) +
    element('DuplicateDetectionHistoryTimeWindow', timeSpan(queue.duplicateDetectionHistoryTimeWindowInMs)) +
    element('MaxDeliveryCount', queue.maxDeliveryCount) +
    element('EnableBatchedOperations', queue.enableBatchedOperations) +
    element('SizeInBytes', runtime.sizeInBytes) +
    element('MessageCount', totalOf(runtime.counts)) +
    element('IsAnonymousAccessible', false) +
    '<AuthorizationRules/>' +
    element('Status', queue.status) +
    optionalElement('ForwardTo', queue.forwardTo && forwardUri(queue.forwardTo)) +
    times(runtime) +
    element('SupportOrdering', true) +
    countDetails(runtime.counts) +
    element('AutoDeleteOnIdle', timeSpan(queue.autoDeleteOnIdleInMs)) +
    element('EnablePartitioning', queue.enablePartitioning) +
    element('EntityAvailabilityStatus', 'Available') +
    optionalElement('ForwardDeadLetteredMessagesTo', queue.forwardDeadLetteredMessagesTo && forwardUri(queue.forwardDeadLetteredMessagesTo)) +
    optionalElement('UserMetadata', queue.userMetadata) +
    element('EnableExpress', queue.enableExpress) +
    element('MaxMessageSizeInKilobytes', queue.maxMessageSizeInKilobytes) +
    '</QueueDescription>'
  );
}

/** `<TopicDescription>` with the topic's properties and runtime figures. */
export function topicXml(topic: TopicProperties, runtime: EntityRuntime): string {
  return (
    `<TopicDescription ${descriptionNamespaces}>` +
    element('DefaultMessageTimeToLive', timeSpan(topic.defaultMessageTimeToLiveInMs)) +
    element('MaxSizeInMegabytes', topic.maxSizeInMegabytes) +
    element('RequiresDuplicateDetection', topic.requiresDuplicateDetection) +
    element('DuplicateDetectionHistoryTimeWindow', timeSpan(topic.duplicateDetectionHistoryTimeWindowInMs)) +
    element('EnableBatchedOperations', topic.enableBatchedOperations) +
    element('SizeInBytes', runtime.sizeInBytes) +
    element('FilteringMessagesBeforePublishing', false) +
    element('IsAnonymousAccessible', false) +
    '<AuthorizationRules/>' +
    element('Status', topic.status) +
    times(runtime) +
    element('SupportOrdering', topic.supportOrdering) +
    countDetails(runtime.counts) +
    element('SubscriptionCount', runtime.subscriptionCount ?? 0) +
    element('AutoDeleteOnIdle', timeSpan(topic.autoDeleteOnIdleInMs)) +
    element('EnablePartitioning', topic.enablePartitioning) +
    element('IsExpress', topic.enableExpress) +
    element('EntityAvailabilityStatus', 'Available') +
    element('EnableSubscriptionPartitioning', false) +
    optionalElement('UserMetadata', topic.userMetadata) +
    element('EnableExpress', topic.enableExpress) +
    element('MaxMessageSizeInKilobytes', topic.maxMessageSizeInKilobytes) +
    '</TopicDescription>'
  );
}

/** `<SubscriptionDescription>` with the subscription's properties and runtime figures. */
export function subscriptionXml(subscription: SubscriptionDefinition, runtime: EntityRuntime, forwardUri: (name: string) => string): string {
  return (
    `<SubscriptionDescription ${descriptionNamespaces}>` +
    element('LockDuration', timeSpan(subscription.lockDurationInMs)) +
    element('RequiresSession', subscription.requiresSession) +
    element('DefaultMessageTimeToLive', timeSpan(subscription.defaultMessageTimeToLiveInMs)) +
    element('DeadLetteringOnMessageExpiration', subscription.deadLetteringOnMessageExpiration) +
    element('DeadLetteringOnFilterEvaluationExceptions', subscription.deadLetteringOnFilterEvaluationExceptions) +
    element('MessageCount', totalOf(runtime.counts)) +
    element('MaxDeliveryCount', subscription.maxDeliveryCount) +
    element('EnableBatchedOperations', subscription.enableBatchedOperations) +
    element('Status', subscription.status) +
    optionalElement('ForwardTo', subscription.forwardTo && forwardUri(subscription.forwardTo)) +
    times(runtime) +
    countDetails(runtime.counts) +
    optionalElement('UserMetadata', subscription.userMetadata) +
    optionalElement('ForwardDeadLetteredMessagesTo', subscription.forwardDeadLetteredMessagesTo && forwardUri(subscription.forwardDeadLetteredMessagesTo)) +
    element('AutoDeleteOnIdle', timeSpan(subscription.autoDeleteOnIdleInMs)) +
    element('EntityAvailabilityStatus', 'Available') +
    '</SubscriptionDescription>'
  );
}

/** `<RuleDescription>`: the filter (true and false filters carry their SQL form), the action, the name. */
export function ruleXml(rule: RuleDefinition): string {
  return (
    `<RuleDescription ${descriptionNamespaces}>` +
    filterXml(rule.filter) +
    actionXml(rule.action) +
    element('CreatedAt', new Date(rule.createdAt).toISOString()) +
    element('Name', rule.name) +
    '</RuleDescription>'
  );
}

/** `<NamespaceInfo>` of a Standard-tier namespace. */
export function namespaceInfoXml(name: string, createdAt: number): string {
  const created = new Date(createdAt).toISOString();
  return (
    `<NamespaceInfo ${descriptionNamespaces}>` +
    element('CreatedTime', created) +
    element('MessagingSKU', 'Standard') +
    element('ModifiedTime', created) +
    element('Name', name) +
    element('NamespaceType', 'Messaging') +
    '</NamespaceInfo>'
  );
}

function filterXml(filter: RuleFilterSpec): string {
  switch (filter.type) {
    case 'true':
    case 'false':
      return `<Filter i:type="${filter.type === 'true' ? 'TrueFilter' : 'FalseFilter'}">${element('SqlExpression', filter.type === 'true' ? '1=1' : '1=0')}${element('CompatibilityLevel', formats.sqlCompatibilityLevel)}</Filter>`;
    case 'sql':
      return `<Filter i:type="SqlFilter">${element('SqlExpression', filter.expression)}${element('CompatibilityLevel', formats.sqlCompatibilityLevel)}${keyValuesXml('Parameters', filter.parameters)}</Filter>`;
    case 'correlation':
      return (
        '<Filter i:type="CorrelationFilter">' +
        correlationFields.map(([field]) => optionalElement(correlationElement(field), filter[field])).join('') +
        keyValuesXml('Properties', filter.properties) +
        '</Filter>'
      );
  }
}

function actionXml(action: RuleActionSpec | undefined): string {
  if (!action) return '<Action i:type="EmptyRuleAction"/>';
  return `<Action i:type="SqlRuleAction">${element('SqlExpression', action.expression)}${element('CompatibilityLevel', formats.sqlCompatibilityLevel)}${keyValuesXml('Parameters', action.parameters)}</Action>`;
}

/**
 * Typed key/value pairs. The SDK reads the type from an attribute literally named `i:type` and drops its
 * first five characters (a four-character prefix and the colon); it knows int, double, string, boolean and
 * dateTime. An empty list is left out: the SDK cannot parse an empty or nil `Parameters` element.
 */
function keyValuesXml(name: string, values: Record<string, CorrelationPropertyValue> | undefined): string {
  const entries = Object.entries(values ?? {});
  if (!entries.length) return '';
  const items = entries.map(([key, value]) => {
    const [type, text] =
      value instanceof Date
        ? ['dateTime', value.toISOString()]
        : typeof value === 'boolean'
          ? ['boolean', String(value)]
          : typeof value === 'number'
            ? [Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? 'int' : 'double', String(value)]
            : ['string', value];
    return `<KeyValueOfstringanyType>${element('Key', key)}<Value i:type="d6p1:${type}" xmlns:d6p1="${xmlNamespaces.schema}">${escapeXml(text)}</Value></KeyValueOfstringanyType>`;
  });
  return `<${name}>${items.join('')}</${name}>`;
}

function times(runtime: EntityRuntime): string {
  return (
    element('CreatedAt', new Date(runtime.createdAt).toISOString()) +
    element('UpdatedAt', new Date(runtime.updatedAt).toISOString()) +
    element('AccessedAt', new Date(runtime.accessedAt).toISOString())
  );
}

/** Message counts in their own namespace, declared with exactly one prefix attribute (the SDK requires it). */
function countDetails(counts: MessageCounts): string {
  const count = (name: string, value: number): string => `<d2p1:${name}>${value}</d2p1:${name}>`;
  return (
    `<CountDetails xmlns:d2p1="${xmlNamespaces.serviceBusCounts}">` +
    count('ActiveMessageCount', counts.active) +
    count('DeadLetterMessageCount', counts.deadLetter) +
    count('ScheduledMessageCount', counts.scheduled) +
    count('TransferMessageCount', counts.transfer) +
    count('TransferDeadLetterMessageCount', counts.transferDeadLetter) +
    '</CountDetails>'
  );
}

function totalOf(counts: MessageCounts): number {
  return counts.active + counts.deadLetter + counts.scheduled + counts.transfer + counts.transferDeadLetter;
}

function timeSpan(ms: number): string {
  return Number.isFinite(ms) ? formatIsoDuration(ms) : formats.maxTimeSpan;
}

function element(name: string, value: string | number | boolean): string {
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

function optionalElement(name: string, value: string | undefined): string {
  return value === undefined || value === '' ? '' : element(name, value);
}
