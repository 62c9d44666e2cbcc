// Subscription rules over `$management` (`ServiceBusRuleManager`): add, remove and enumerate, with the AMQP rule
// descriptions the SDK reads (described lists with Service Bus's descriptor codes). Part of management-operations.ts.

import { amqpTypes, type AmqpTyped } from '../amqp/amqp-message.js';
import { BrokerError } from '../amqp/broker-error.js';
import { childNameProblem } from '../entities/entity-definitions.js';
import type { ManagementContext, ManagementResponse } from './management-operations.js';
import {
  compileRule,
  correlationFields,
  isEmptyCorrelationFilter,
  type CorrelationFilterSpec,
  type CorrelationPropertyValue,
  type RuleDefinition,
  type RuleFilterSpec,
  type RuleSpec,
} from '../filters/rule-definition.js';
import type { SubscriptionEntity } from '../entities/service-bus-namespace.js';
import { SqlSyntaxError } from '../filters/sql-filter.js';

/** Descriptor codes of the described lists `enumerate-rules` answers with (`@azure/core-amqp` `descriptorCodes`). */
const descriptors = {
  ruleDescription: 0x0000013700000004,
  sqlFilter: 0x0000001370000006,
  trueFilter: 0x0000001370000007,
  falseFilter: 0x0000001370000008,
  correlationFilter: 0x0000001370000009,
  emptyRuleAction: 0x0000013700000005,
  sqlRuleAction: 0x0000013700000006,
};

/** The request fields of a correlation filter, in the order of the AMQP encoding. */
const correlationKeys: Record<(typeof correlationFields)[number][0], string> = {
  correlationId: 'correlation-id',
  messageId: 'message-id',
  to: 'to',
  replyTo: 'reply-to',
  label: 'label',
  sessionId: 'session-id',
  replyToSessionId: 'reply-to-session-id',
  contentType: 'content-type',
};

const sqlCompatibilityLevel = 20;

type RequestBody = Record<string, unknown>;

/**
 * Subscription rule management over `$management`, as `ServiceBusRuleManager` uses it: add-rule,
 * remove-rule and enumerate-rules on `<topic>/Subscriptions/<subscription>/$management`. They need the
 * Listen right (Data Receiver) on the subscription, as in Service Bus; a change routes the next message
 * sent to the topic.
 */
export const ruleOperations: Record<string, (context: ManagementContext, body: RequestBody) => ManagementResponse> = {
  'com.microsoft:add-rule': (context, body) => {
    context.authorize('receive', 'add rule');
    const subscription = subscriptionOf(context);
    const name = ruleName(body);
    const spec = ruleSpec(name, body['rule-description']);
    if (subscription.rule(name)) {
      throw new BrokerError('entity-already-exists', `The messaging entity '${subscription.path}/Rules/${name}' already exists.`);
    }
    const now = Date.now();
    let rule: RuleDefinition;
    try {
      rule = compileRule(spec, now);
    } catch (error) {
      if (error instanceof SqlSyntaxError) throw new BrokerError('invalid-argument', `The SQL of rule '${name}' is invalid ${error.message}.`);
      throw error;
    }
    context.namespace.putRule(subscription, rule, now);
    return { status: 200, description: 'OK', durable: true };
  },

  'com.microsoft:remove-rule': (context, body) => {
    context.authorize('receive', 'remove rule');
    const subscription = subscriptionOf(context);
    const name = ruleName(body);
    if (!subscription.rule(name)) throw context.namespace.notFound(`${subscription.path}/Rules/${name}`);
    context.namespace.removeRule(subscription, name, Date.now());
    return { status: 200, description: 'OK', durable: true };
  },

  'com.microsoft:enumerate-rules': (context, body) => {
    context.authorize('receive', 'enumerate rules');
    const subscription = subscriptionOf(context);
    const skip = nonNegative(body.skip, 'skip', 0);
    const top = nonNegative(body.top, 'top', Number.MAX_SAFE_INTEGER);
    // Service Bus enumerates rules by name.
    const rules = [...subscription.definition.rules].sort((a, b) => a.name.localeCompare(b.name, 'en', { sensitivity: 'base' })).slice(skip, skip + top);
    if (!rules.length) return { status: 204, description: 'No Content' };
    return {
      status: 200,
      description: 'OK',
      body: amqpTypes.wrap_map({ rules: amqpTypes.wrap_list(rules.map((rule) => amqpTypes.wrap_map({ 'rule-description': ruleDescription(rule) }))) }),
    };
  },
};

function subscriptionOf(context: ManagementContext): SubscriptionEntity {
  const entity = context.node.entity;
  if (!entity || entity.kind !== 'subscription' || context.node.queue !== entity.active) {
    throw new BrokerError('not-allowed', `${context.node.path} is not a subscription: rules belong to subscriptions (<topic>/Subscriptions/<name>/$management).`);
  }
  return entity;
}

function ruleName(body: RequestBody): string {
  const name = body['rule-name'];
  if (typeof name !== 'string') throw new BrokerError('invalid-argument', 'rule-name must be a string.');
  const problem = childNameProblem(name);
  if (problem) throw new BrokerError('invalid-argument', `The rule name '${name}' ${problem}.`);
  return name;
}

/** The rule an add-rule request describes: a SQL or correlation filter, and an optional SQL action. */
function ruleSpec(name: string, description: unknown): RuleSpec {
  if (!isMap(description)) throw new BrokerError('invalid-argument', 'rule-description must be a map.');
  const sql = description['sql-filter'];
  const correlation = description['correlation-filter'];
  let filter: RuleFilterSpec;
  if (isMap(sql)) {
    filter = { type: 'sql', expression: expressionOf(sql, 'sql-filter') };
  } else if (isMap(correlation)) {
    const spec: CorrelationFilterSpec = { type: 'correlation' };
    for (const [field] of correlationFields) {
      const value = correlation[correlationKeys[field]];
      if (value === undefined || value === null) continue;
      if (typeof value !== 'string') throw new BrokerError('invalid-argument', `correlation-filter ${correlationKeys[field]} must be a string.`);
      spec[field] = value;
    }
    const properties = correlation.properties;
    if (properties !== undefined && properties !== null) {
      if (!isMap(properties)) throw new BrokerError('invalid-argument', 'correlation-filter properties must be a map.');
      spec.properties = Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, propertyValue(key, value)]));
      if (!Object.keys(spec.properties).length) delete spec.properties;
    }
    if (isEmptyCorrelationFilter(spec)) throw new BrokerError('invalid-argument', 'A correlation filter needs at least one property to match.');
    filter = spec;
  } else {
    throw new BrokerError('invalid-argument', 'rule-description needs a sql-filter or a correlation-filter.');
  }
  const action = description['sql-rule-action'];
  if (action !== undefined && action !== null && !isMap(action)) throw new BrokerError('invalid-argument', 'sql-rule-action must be a map.');
  return { name, filter, ...(isMap(action) ? { action: { expression: expressionOf(action, 'sql-rule-action') } } : {}) };
}

function expressionOf(map: RequestBody, field: string): string {
  const expression = map.expression;
  if (typeof expression !== 'string' || !expression.trim()) throw new BrokerError('invalid-argument', `${field} needs an expression.`);
  return expression;
}

function propertyValue(key: string, value: unknown): CorrelationPropertyValue {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value instanceof Date) return value;
  if (typeof value === 'bigint') return Number(value);
  throw new BrokerError('invalid-argument', `correlation-filter property '${key}' must be a string, number, boolean or timestamp.`);
}

function nonNegative(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new BrokerError('invalid-argument', `${field} must be a non-negative integer.`);
  return value;
}

function isMap(value: unknown): value is RequestBody {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && !(value instanceof Date);
}

/** A rule as `enumerate-rules` describes it: described(rule-description, [filter, action, name, created-at]). */
function ruleDescription(rule: RuleDefinition): AmqpTyped {
  const described = (code: number, fields: AmqpTyped[]): AmqpTyped => amqpTypes.described(amqpTypes.wrap_ulong(code), amqpTypes.wrap_list(fields));
  const text = (value: string | undefined): AmqpTyped => (value === undefined ? amqpTypes.wrap(null) : amqpTypes.wrap_string(value));
  const sql = (code: number, expression: string): AmqpTyped => described(code, [amqpTypes.wrap_string(expression), amqpTypes.wrap_int(sqlCompatibilityLevel)]);
  let filter: AmqpTyped;
  switch (rule.filter.type) {
    case 'true':
      filter = described(descriptors.trueFilter, []);
      break;
    case 'false':
      filter = described(descriptors.falseFilter, []);
      break;
    case 'sql':
      filter = sql(descriptors.sqlFilter, rule.filter.expression);
      break;
    case 'correlation': {
      const correlation = rule.filter;
      // The SDK reads the properties map even when there are none: an empty map, never null.
      const properties = amqpTypes.wrap_map(
        Object.fromEntries(Object.entries(correlation.properties ?? {}).map(([key, value]) => [key, value instanceof Date ? amqpTypes.wrap_timestamp(value.getTime()) : value])),
      );
      filter = described(descriptors.correlationFilter, [...correlationFields.map(([field]) => text(correlation[field])), properties]);
      break;
    }
  }
  const action = rule.action ? sql(descriptors.sqlRuleAction, rule.action.expression) : described(descriptors.emptyRuleAction, []);
  return described(descriptors.ruleDescription, [filter, action, amqpTypes.wrap_string(rule.name), amqpTypes.wrap_timestamp(rule.createdAt)]);
}
