import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config/local-azure-config.js';
import { formatIsoDuration, parseIsoDuration } from './iso-duration.js';
import { compileSqlAction, compileSqlFilter, SqlSyntaxError, type FilterInput, type SqlAction } from './sql-filter.js';

/**
 * Entity defaults where the topology file leaves a property out: Azure's defaults for a new entity (the
 * same file feeds the Bicep deployment, so an absent property must mean what it means in Azure).
 */
export const entityDefaults = {
  lockDurationInMs: 60_000,
  maxDeliveryCount: 10,
  /** Azure's default TTL is TimeSpan.MaxValue: messages never expire. */
  defaultMessageTimeToLiveInMs: Number.POSITIVE_INFINITY,
  duplicateDetectionHistoryTimeWindowInMs: 10 * 60_000,
  deadLetteringOnMessageExpiration: false,
  requiresSession: false,
  requiresDuplicateDetection: false,
} as const;

/** Azure's limits for entity properties (the emulator's tighter limits do not apply here). */
const limits = {
  lockDurationInMs: { min: 5_000, max: 5 * 60_000 },
  maxDeliveryCount: { min: 1, max: 2000 },
  defaultMessageTimeToLiveInMs: { min: 1_000, max: Number.POSITIVE_INFINITY },
  duplicateDetectionHistoryTimeWindowInMs: { min: 20_000, max: 7 * 86_400_000 },
  /** Service Bus allows at most four auto-forwarding hops. */
  forwardingHops: 4,
};

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
}

export interface QueueDefinition extends ReceivableProperties {
  kind: 'queue';
  name: string;
  requiresDuplicateDetection: boolean;
  duplicateDetectionHistoryTimeWindowInMs: number;
}

export interface TopicDefinition {
  kind: 'topic';
  name: string;
  defaultMessageTimeToLiveInMs: number;
  requiresDuplicateDetection: boolean;
  duplicateDetectionHistoryTimeWindowInMs: number;
  subscriptions: SubscriptionDefinition[];
}

export interface SubscriptionDefinition extends ReceivableProperties {
  kind: 'subscription';
  name: string;
  topic: string;
  rules: RuleDefinition[];
}

/** A correlation filter: every given field must equal the message's (properties: by value). */
export interface CorrelationFilterDefinition {
  contentType?: string;
  correlationId?: string;
  label?: string;
  messageId?: string;
  replyTo?: string;
  replyToSessionId?: string;
  sessionId?: string;
  to?: string;
  properties?: Record<string, string | number | boolean>;
}

/** A subscription rule: a filter and an optional SQL action. */
export interface RuleDefinition {
  name: string;
  filterType: 'Correlation' | 'Sql';
  /** The filter as written (operator output). */
  filterText: string;
  matches(input: FilterInput): boolean;
  action?: SqlAction;
}

/** The entities of the one namespace, validated. */
export interface Topology {
  /** The file it came from. */
  file: string;
  /** The namespace name in the file (informational: the ARM name comes from the local Azure config). */
  namespace: string;
  queues: QueueDefinition[];
  topics: TopicDefinition[];
}

// ---------------------------------------------------------------------------------------------------
// File schema: the official emulator's Config.json

function duration(field: 'lockDurationInMs' | 'defaultMessageTimeToLiveInMs' | 'duplicateDetectionHistoryTimeWindowInMs') {
  const { min, max } = limits[field];
  return z.string().transform((text, ctx) => {
    const ms = parseIsoDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not an ISO 8601 duration such as PT30S, PT5M or P7D` });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({
        code: 'custom',
        message: `"${text}" is outside the allowed range ${formatIsoDuration(min)}..${Number.isFinite(max) ? formatIsoDuration(max) : 'unlimited'}`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

const entityName = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]{0,258}[A-Za-z0-9_])?$/, 'letters, digits, ".", "-" and "_", starting with a letter or digit (no "/")');
const childName = z
  .string()
  .regex(/^[A-Za-z0-9$]([A-Za-z0-9._-]{0,48}[A-Za-z0-9_])?$/, 'at most 50 letters, digits, ".", "-" and "_"');
const forwardTarget = z
  .string()
  .transform((text) => text.trim())
  .optional();

const queueProperties = z.strictObject({
  DeadLetteringOnMessageExpiration: z.boolean().optional(),
  DefaultMessageTimeToLive: duration('defaultMessageTimeToLiveInMs').optional(),
  DuplicateDetectionHistoryTimeWindow: duration('duplicateDetectionHistoryTimeWindowInMs').optional(),
  ForwardDeadLetteredMessagesTo: forwardTarget,
  ForwardTo: forwardTarget,
  LockDuration: duration('lockDurationInMs').optional(),
  MaxDeliveryCount: z.number().int().min(limits.maxDeliveryCount.min).max(limits.maxDeliveryCount.max).optional(),
  RequiresDuplicateDetection: z.boolean().optional(),
  RequiresSession: z.boolean().optional(),
});

const subscriptionProperties = queueProperties.omit({ DuplicateDetectionHistoryTimeWindow: true, RequiresDuplicateDetection: true });

const topicProperties = z.strictObject({
  DefaultMessageTimeToLive: duration('defaultMessageTimeToLiveInMs').optional(),
  DuplicateDetectionHistoryTimeWindow: duration('duplicateDetectionHistoryTimeWindowInMs').optional(),
  RequiresDuplicateDetection: z.boolean().optional(),
});

const correlationFilter = z.strictObject({
  ContentType: z.string().optional(),
  CorrelationId: z.string().optional(),
  Label: z.string().optional(),
  MessageId: z.string().optional(),
  ReplyTo: z.string().optional(),
  ReplyToSessionId: z.string().optional(),
  SessionId: z.string().optional(),
  To: z.string().optional(),
  Properties: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

const rule = z.strictObject({
  Name: childName,
  Properties: z.strictObject({
    FilterType: z.enum(['Correlation', 'Sql']),
    CorrelationFilter: correlationFilter.optional(),
    SqlFilter: z.strictObject({ SqlExpression: z.string().min(1) }).optional(),
    Action: z.strictObject({ SqlExpression: z.string().min(1) }).optional(),
  }),
});

const topologySchema = z.strictObject({
  $schema: z.string().optional(),
  UserConfig: z.strictObject({
    Namespaces: z
      .array(
        z.strictObject({
          Name: z.string().min(1),
          Queues: z.array(z.strictObject({ Name: entityName, Properties: queueProperties.prefault({}) })).default([]),
          Topics: z
            .array(
              z.strictObject({
                Name: entityName,
                Properties: topicProperties.prefault({}),
                Subscriptions: z
                  .array(z.strictObject({ Name: childName, Properties: subscriptionProperties.prefault({}), Rules: z.array(rule).optional() }))
                  .default([]),
              }),
            )
            .default([]),
        }),
      )
      .length(1, 'the file must define exactly one namespace, as the emulator format does'),
    Logging: z.strictObject({ Type: z.string() }).optional(),
  }),
});

type TopologyFile = z.infer<typeof topologySchema>;

// ---------------------------------------------------------------------------------------------------

/**
 * Reads and validates a topology file in the emulator's `Config.json` format.
 *
 * @throws {ConfigError} naming the file, the entity (`Queues[1] "orders"`) and the field that is wrong.
 */
export function loadTopology(path: string): Topology {
  if (!existsSync(path)) throw new ConfigError(`${path}: Service Bus topology file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseTopology(json, path);
}

/** Validates a parsed topology document (see {@link loadTopology}). */
export function parseTopology(json: unknown, source: string): Topology {
  const parsed = topologySchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`${source}: ${parsed.error.issues.map((issue) => `${describePath(json, issue.path)}: ${issue.message}`).join('; ')}`);
  }
  return buildTopology(parsed.data, source);
}

function buildTopology(file: TopologyFile, source: string): Topology {
  const namespace = file.UserConfig.Namespaces[0]!;
  const problems: string[] = [];
  const queues: QueueDefinition[] = namespace.Queues.map((queue) => ({
    kind: 'queue',
    name: queue.Name,
    ...receivable(queue.Properties),
    requiresDuplicateDetection: queue.Properties.RequiresDuplicateDetection ?? entityDefaults.requiresDuplicateDetection,
    duplicateDetectionHistoryTimeWindowInMs:
      queue.Properties.DuplicateDetectionHistoryTimeWindow ?? entityDefaults.duplicateDetectionHistoryTimeWindowInMs,
  }));
  const topics: TopicDefinition[] = namespace.Topics.map((topic, t) => ({
    kind: 'topic',
    name: topic.Name,
    defaultMessageTimeToLiveInMs: topic.Properties.DefaultMessageTimeToLive ?? entityDefaults.defaultMessageTimeToLiveInMs,
    requiresDuplicateDetection: topic.Properties.RequiresDuplicateDetection ?? entityDefaults.requiresDuplicateDetection,
    duplicateDetectionHistoryTimeWindowInMs:
      topic.Properties.DuplicateDetectionHistoryTimeWindow ?? entityDefaults.duplicateDetectionHistoryTimeWindowInMs,
    subscriptions: topic.Subscriptions.map((subscription, s) => ({
      kind: 'subscription',
      name: subscription.Name,
      topic: topic.Name,
      ...receivable(subscription.Properties),
      rules: buildRules(subscription.Rules, `Topics[${t}] "${topic.Name}".Subscriptions[${s}] "${subscription.Name}"`, problems),
    })),
  }));

  // Queues and topics share one namespace of names; entity names are case-insensitive in Service Bus.
  const entities = new Map<string, string>();
  const claim = (name: string, where: string): void => {
    const previous = entities.get(name.toLowerCase());
    if (previous) problems.push(`${where}: the name "${name}" is already used by ${previous} (names are case-insensitive)`);
    else entities.set(name.toLowerCase(), where);
  };
  queues.forEach((queue, i) => claim(queue.name, `Queues[${i}] "${queue.name}"`));
  topics.forEach((topic, i) => {
    claim(topic.name, `Topics[${i}] "${topic.name}"`);
    const seen = new Set<string>();
    topic.subscriptions.forEach((subscription, s) => {
      if (seen.has(subscription.name.toLowerCase())) {
        problems.push(`Topics[${i}] "${topic.name}".Subscriptions[${s}]: the subscription name "${subscription.name}" is used twice`);
      }
      seen.add(subscription.name.toLowerCase());
    });
  });

  const forwarders: { where: string; entity: QueueDefinition | SubscriptionDefinition }[] = [
    ...queues.map((queue, i) => ({ where: `Queues[${i}] "${queue.name}"`, entity: queue })),
    ...topics.flatMap((topic, t) =>
      topic.subscriptions.map((subscription, s) => ({
        where: `Topics[${t}] "${topic.name}".Subscriptions[${s}] "${subscription.name}"`,
        entity: subscription,
      })),
    ),
  ];
  for (const { where, entity } of forwarders) {
    for (const field of ['forwardTo', 'forwardDeadLetteredMessagesTo'] as const) {
      const target = entity[field];
      if (target === undefined || target === '') {
        delete entity[field];
        continue;
      }
      const property = field === 'forwardTo' ? 'ForwardTo' : 'ForwardDeadLetteredMessagesTo';
      if (!entities.has(target.toLowerCase())) problems.push(`${where}.Properties.${property}: no queue or topic named "${target}"`);
      else if (entity.kind !== 'subscription' && target.toLowerCase() === entity.name.toLowerCase()) {
        problems.push(`${where}.Properties.${property}: an entity cannot forward to itself`);
      }
    }
  }
  if (!problems.length) checkForwardingChains(queues, topics, problems);
  if (problems.length) throw new ConfigError(`${source}: ${problems.join('; ')}`);
  return { file: source, namespace: namespace.Name, queues, topics };
}

function receivable(properties: z.infer<typeof subscriptionProperties>): ReceivableProperties {
  return {
    lockDurationInMs: properties.LockDuration ?? entityDefaults.lockDurationInMs,
    maxDeliveryCount: properties.MaxDeliveryCount ?? entityDefaults.maxDeliveryCount,
    defaultMessageTimeToLiveInMs: properties.DefaultMessageTimeToLive ?? entityDefaults.defaultMessageTimeToLiveInMs,
    deadLetteringOnMessageExpiration: properties.DeadLetteringOnMessageExpiration ?? entityDefaults.deadLetteringOnMessageExpiration,
    requiresSession: properties.RequiresSession ?? entityDefaults.requiresSession,
    ...(properties.ForwardTo !== undefined ? { forwardTo: properties.ForwardTo } : {}),
    ...(properties.ForwardDeadLetteredMessagesTo !== undefined ? { forwardDeadLetteredMessagesTo: properties.ForwardDeadLetteredMessagesTo } : {}),
  };
}

type FileRule = z.infer<typeof rule>;

function buildRules(rules: FileRule[] | undefined, where: string, problems: string[]): RuleDefinition[] {
  // A subscription created without rules gets Azure's `$Default` rule, which matches every message.
  if (rules === undefined) return [{ name: '$Default', filterType: 'Sql', filterText: '1=1', matches: () => true }];
  const names = new Set<string>();
  const result: RuleDefinition[] = [];
  rules.forEach((fileRule, r) => {
    const at = `${where}.Rules[${r}] "${fileRule.Name}"`;
    if (names.has(fileRule.Name.toLowerCase())) problems.push(`${at}: the rule name is used twice`);
    names.add(fileRule.Name.toLowerCase());
    const { FilterType, CorrelationFilter, SqlFilter, Action } = fileRule.Properties;
    let definition: RuleDefinition | undefined;
    if (FilterType === 'Correlation') {
      if (!CorrelationFilter) problems.push(`${at}.Properties.CorrelationFilter: required when FilterType is "Correlation"`);
      else if (SqlFilter) problems.push(`${at}.Properties.SqlFilter: not allowed when FilterType is "Correlation"`);
      else if (Object.values(CorrelationFilter).every((value) => value === undefined || (typeof value === 'object' && !Object.keys(value).length))) {
        problems.push(`${at}.Properties.CorrelationFilter: give at least one field to match`);
      } else definition = correlationRule(fileRule.Name, CorrelationFilter);
    } else if (!SqlFilter) problems.push(`${at}.Properties.SqlFilter: required when FilterType is "Sql"`);
    else if (CorrelationFilter) problems.push(`${at}.Properties.CorrelationFilter: not allowed when FilterType is "Sql"`);
    else {
      try {
        const filter = compileSqlFilter(SqlFilter.SqlExpression);
        definition = { name: fileRule.Name, filterType: 'Sql', filterText: SqlFilter.SqlExpression, matches: (input) => filter.matches(input) };
      } catch (error) {
        if (!(error instanceof SqlSyntaxError)) throw error;
        problems.push(`${at}.Properties.SqlFilter.SqlExpression: ${error.message} (supported SQL: see docs/servicebus.md)`);
      }
    }
    if (Action) {
      try {
        const action = compileSqlAction(Action.SqlExpression);
        if (definition) definition.action = action;
      } catch (error) {
        if (!(error instanceof SqlSyntaxError)) throw error;
        problems.push(`${at}.Properties.Action.SqlExpression: ${error.message}`);
      }
    }
    if (definition) result.push(definition);
  });
  return result;
}

function correlationRule(name: string, filter: z.infer<typeof correlationFilter>): RuleDefinition {
  const system: [keyof FilterInput['system'], string | undefined][] = [
    ['ContentType', filter.ContentType],
    ['CorrelationId', filter.CorrelationId],
    ['Label', filter.Label],
    ['MessageId', filter.MessageId],
    ['ReplyTo', filter.ReplyTo],
    ['ReplyToSessionId', filter.ReplyToSessionId],
    ['SessionId', filter.SessionId],
    ['To', filter.To],
  ];
  const wanted = system.filter((entry): entry is [keyof FilterInput['system'], string] => entry[1] !== undefined);
  const properties = Object.entries(filter.Properties ?? {});
  const filterText = [...wanted.map(([key, value]) => `${key}=${value}`), ...properties.map(([key, value]) => `${key}=${String(value)}`)].join(', ');
  return {
    name,
    filterType: 'Correlation',
    filterText,
    // Service Bus compares correlation fields as exact (case-sensitive) strings, properties by value.
    matches: (input) =>
      wanted.every(([key, value]) => input.system[key] === value) &&
      properties.every(([key, value]) => {
        const actual = input.user[key];
        return actual instanceof Date ? actual.getTime() === value : actual === value;
      }),
  };
}

/** Refuses forwarding loops and chains longer than Service Bus's four hops. */
function checkForwardingChains(queues: QueueDefinition[], topics: TopicDefinition[], problems: string[]): void {
  const byName = new Map<string, QueueDefinition | TopicDefinition>([...queues, ...topics].map((entity) => [entity.name.toLowerCase(), entity]));
  const next = (entity: QueueDefinition | TopicDefinition): string[] =>
    entity.kind === 'queue' ? (entity.forwardTo ? [entity.forwardTo] : []) : entity.subscriptions.flatMap((s) => (s.forwardTo ? [s.forwardTo] : []));
  const walk = (entity: QueueDefinition | TopicDefinition, path: string[]): void => {
    for (const targetName of next(entity)) {
      const target = byName.get(targetName.toLowerCase())!;
      const chain = [...path, target.name];
      if (path.some((name) => name.toLowerCase() === target.name.toLowerCase())) {
        problems.push(`ForwardTo: forwarding loop ${chain.join(' → ')}`);
        continue;
      }
      if (chain.length - 1 > limits.forwardingHops) {
        problems.push(`ForwardTo: the chain ${chain.join(' → ')} has more than ${limits.forwardingHops} hops (the Service Bus limit)`);
        continue;
      }
      walk(target, chain);
    }
  };
  for (const entity of byName.values()) {
    if (problems.length) return;
    walk(entity, [entity.name]);
  }
}

/** `UserConfig.Namespaces[0].Queues[1] "orders".Properties.LockDuration` from a zod issue path. */
function describePath(json: unknown, path: readonly PropertyKey[]): string {
  let node: unknown = json;
  let text = '';
  for (const key of path) {
    const child = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
    if (typeof key === 'number') {
      const name = child !== null && typeof child === 'object' ? (child as { Name?: unknown }).Name : undefined;
      text += `[${key}]${typeof name === 'string' ? ` "${name}"` : ''}`;
    } else {
      text += `${text ? '.' : ''}${String(key)}`;
    }
    node = child;
  }
  return text.replace(/^UserConfig\.Namespaces\[0\](?: "[^"]*")?\./, '') || '(root)';
}
