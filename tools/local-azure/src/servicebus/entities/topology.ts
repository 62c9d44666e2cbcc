import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../config/local-azure-config.js';
import {
  childNameProblem,
  defaultQueue,
  defined,
  defaultSubscription,
  defaultTopic,
  entityLimits,
  entityNameProblem,
  type QueueDefinition,
  type ReceivableProperties,
  type SubscriptionDefinition,
  type TopicDefinition,
} from './entity-definitions.js';
import { formatIsoDuration, parseIsoDuration } from './iso-duration.js';
import { compileRule, defaultRule, isEmptyCorrelationFilter, type CorrelationFilterSpec, type RuleDefinition, type RuleSpec } from '../filters/rule-definition.js';
import { SqlSyntaxError } from '../filters/sql-filter.js';

export { entityDefaults } from './entity-definitions.js';
export type { QueueDefinition, ReceivableProperties, SubscriptionDefinition, TopicDefinition } from './entity-definitions.js';

/** The entities of the one namespace, validated. */
export interface Topology {
  /** The file it came from. */
  file: string;
  /** The namespace name in the file (informational: the ARM name comes from the local Azure config). */
  namespace: string;
  queues: QueueDefinition[];
  topics: TopicDefinition[];
  /** What loads but would not deploy to Azure as written (logged at start). */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------
// File schema: the official emulator's Config.json (its schema: Azure/azure-service-bus-emulator-installer,
// ServiceBus-Emulator/Schema/Config-schema.json). Every file the emulator accepts loads, with Azure's
// defaults for absent properties; the emulator's narrower ranges are not applied (Azure's are).

/** Lower bounds the file may go below Azure's: the emulator accepts them, Azure would refuse the deployment. */
const fileMinimums = {
  /** The emulator allows a duplicate-detection window from 5 seconds; Azure from 20. */
  duplicateDetectionHistoryTimeWindowInMs: 5_000,
};

function duration(field: 'lockDurationInMs' | 'defaultMessageTimeToLiveInMs' | 'duplicateDetectionHistoryTimeWindowInMs') {
  const { max } = entityLimits[field];
  const min = field === 'duplicateDetectionHistoryTimeWindowInMs' ? fileMinimums.duplicateDetectionHistoryTimeWindowInMs : entityLimits[field].min;
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

function named(problem: (name: string) => string | undefined) {
  return z.string().superRefine((name, ctx) => {
    const message = problem(name);
    if (message) ctx.addIssue({ code: 'custom', message: `"${name}" ${message}` });
  });
}

const entityName = named(entityNameProblem);
const childName = named(childNameProblem);
// The emulator's sample files write "" for "no forwarding".
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
  MaxDeliveryCount: z.number().int().min(entityLimits.maxDeliveryCount.min).max(entityLimits.maxDeliveryCount.max).optional(),
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
    // The emulator's schema lets an action leave its expression out: no expression means no action.
    Action: z.strictObject({ SqlExpression: z.string().optional() }).optional(),
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
    // The emulator's log settings: accepted, not used (the local Azure logs to its console).
    Logging: z.strictObject({ Type: z.enum(['File', 'Console', 'File,Console', 'Console,File']) }).optional(),
  }),
});

type TopologyFile = z.infer<typeof topologySchema>;

// ---------------------------------------------------------------------------------------------------

/**
 * Reads and validates a topology file in the emulator's `Config.json` format.
 *
 * @throws {ConfigError} naming the file, the entity (`Queues[1] "orders"`) and the field that is wrong.
 */
export function loadTopology(path: string, now = Date.now()): Topology {
  if (!existsSync(path)) throw new ConfigError(`${path}: Service Bus topology file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseTopology(json, path, now);
}

/** Validates a parsed topology document (see {@link loadTopology}); `now` dates its rules. */
export function parseTopology(json: unknown, source: string, now = Date.now()): Topology {
  const parsed = topologySchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`${source}: ${parsed.error.issues.map((issue) => `${describePath(json, issue.path)}: ${issue.message}`).join('; ')}`);
  }
  return buildTopology(parsed.data, source, now);
}

function buildTopology(file: TopologyFile, source: string, now: number): Topology {
  const namespace = file.UserConfig.Namespaces[0]!;
  const problems: string[] = [];
  const warnings: string[] = [];
  const queues: QueueDefinition[] = namespace.Queues.map((queue) => ({
    ...defaultQueue(queue.Name),
    ...receivable(queue.Properties),
    ...defined({
      requiresDuplicateDetection: queue.Properties.RequiresDuplicateDetection,
      duplicateDetectionHistoryTimeWindowInMs: queue.Properties.DuplicateDetectionHistoryTimeWindow,
    }),
  }));
  const topics: TopicDefinition[] = namespace.Topics.map((topic, t) => ({
    ...defaultTopic(topic.Name),
    ...defined({
      defaultMessageTimeToLiveInMs: topic.Properties.DefaultMessageTimeToLive,
      requiresDuplicateDetection: topic.Properties.RequiresDuplicateDetection,
      duplicateDetectionHistoryTimeWindowInMs: topic.Properties.DuplicateDetectionHistoryTimeWindow,
    }),
    subscriptions: topic.Subscriptions.map((subscription, s) => ({
      ...defaultSubscription(topic.Name, subscription.Name),
      ...receivable(subscription.Properties),
      rules: buildRules(subscription.Rules, `Topics[${t}] "${topic.Name}".Subscriptions[${s}] "${subscription.Name}"`, problems, warnings, now),
    })),
  }));

  const windowMinimum = entityLimits.duplicateDetectionHistoryTimeWindowInMs.min;
  [...namespace.Queues.map((q, i) => [`Queues[${i}] "${q.Name}"`, q.Properties] as const), ...namespace.Topics.map((t, i) => [`Topics[${i}] "${t.Name}"`, t.Properties] as const)].forEach(
    ([where, properties]) => {
      const window = properties.DuplicateDetectionHistoryTimeWindow;
      if (window !== undefined && window < windowMinimum) {
        warnings.push(
          `${where}.Properties.DuplicateDetectionHistoryTimeWindow: ${formatIsoDuration(window)} is below Azure's minimum of ${formatIsoDuration(windowMinimum)} (the emulator accepts it; deploying this file to Azure would fail)`,
        );
      }
    },
  );

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
  return { file: source, namespace: namespace.Name, queues, topics, warnings };
}

function receivable(properties: z.infer<typeof subscriptionProperties>): Partial<ReceivableProperties> {
  return defined({
    lockDurationInMs: properties.LockDuration,
    maxDeliveryCount: properties.MaxDeliveryCount,
    defaultMessageTimeToLiveInMs: properties.DefaultMessageTimeToLive,
    deadLetteringOnMessageExpiration: properties.DeadLetteringOnMessageExpiration,
    requiresSession: properties.RequiresSession,
    forwardTo: properties.ForwardTo,
    forwardDeadLetteredMessagesTo: properties.ForwardDeadLetteredMessagesTo,
  });
}


type FileRule = z.infer<typeof rule>;

function buildRules(rules: FileRule[] | undefined, where: string, problems: string[], warnings: string[], now: number): RuleDefinition[] {
  // A subscription created without rules gets Azure's `$Default` rule, which matches every message. The
  // official emulator does the same for `"Rules": []` (and Bicep, which creates no rule resources for it).
  if (!rules?.length) return [defaultRule(now)];
  const names = new Set<string>();
  const result: RuleDefinition[] = [];
  rules.forEach((fileRule, r) => {
    const at = `${where}.Rules[${r}] "${fileRule.Name}"`;
    if (names.has(fileRule.Name.toLowerCase())) problems.push(`${at}: the rule name is used twice`);
    names.add(fileRule.Name.toLowerCase());
    const { FilterType, CorrelationFilter, SqlFilter, Action } = fileRule.Properties;
    let spec: RuleSpec | undefined;
    if (FilterType === 'Correlation') {
      if (!CorrelationFilter) problems.push(`${at}.Properties.CorrelationFilter: required when FilterType is "Correlation"`);
      else {
        // The emulator's schema picks the filter by FilterType and lets the other one be there.
        if (SqlFilter) warnings.push(`${at}.Properties.SqlFilter: ignored, FilterType is "Correlation"`);
        const filter = correlationSpec(CorrelationFilter);
        if (isEmptyCorrelationFilter(filter)) problems.push(`${at}.Properties.CorrelationFilter: give at least one field to match`);
        else spec = { name: fileRule.Name, filter };
      }
    } else if (!SqlFilter) problems.push(`${at}.Properties.SqlFilter: required when FilterType is "Sql"`);
    else {
      if (CorrelationFilter) warnings.push(`${at}.Properties.CorrelationFilter: ignored, FilterType is "Sql"`);
      spec = { name: fileRule.Name, filter: { type: 'sql', expression: SqlFilter.SqlExpression } };
    }
    if (!spec) return;
    if (Action?.SqlExpression?.trim()) spec.action = { expression: Action.SqlExpression };
    try {
      result.push(compileRule(spec, now));
    } catch (error) {
      if (!(error instanceof SqlSyntaxError)) throw error;
      const field = spec.filter.type === 'sql' && !sqlFilterCompiles(spec) ? 'SqlFilter.SqlExpression' : 'Action.SqlExpression';
      const suffix = field === 'SqlFilter.SqlExpression' ? ' (supported SQL: see docs/servicebus.md)' : '';
      problems.push(`${at}.Properties.${field}: ${error.message}${suffix}`);
    }
  });
  return result;
}

/** Whether the rule's SQL filter alone compiles (tells a bad filter from a bad action). */
function sqlFilterCompiles(spec: RuleSpec): boolean {
  try {
    compileRule({ name: spec.name, filter: spec.filter }, 0);
    return true;
  } catch {
    return false;
  }
}

function correlationSpec(filter: z.infer<typeof correlationFilter>): CorrelationFilterSpec {
  return {
    type: 'correlation',
    ...defined({
      contentType: filter.ContentType,
      correlationId: filter.CorrelationId,
      label: filter.Label,
      messageId: filter.MessageId,
      replyTo: filter.ReplyTo,
      replyToSessionId: filter.ReplyToSessionId,
      sessionId: filter.SessionId,
      to: filter.To,
      properties: filter.Properties,
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
      if (chain.length - 1 > entityLimits.forwardingHops) {
        problems.push(`ForwardTo: the chain ${chain.join(' → ')} has more than ${entityLimits.forwardingHops} hops (the Service Bus limit)`);
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
