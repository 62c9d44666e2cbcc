import { defaultQueue, defaultSubscription, defaultTopic, type QueueDefinition, type SubscriptionDefinition, type TopicProperties } from '../entities/entity-definitions.js';
import { compileRule, ruleSpecOf, type RuleSpec } from '../filters/rule-definition.js';

/** A definition as stored: JSON, with `Infinity` and dates tagged (JSON has neither). */
type Stored = Record<string, unknown>;

/** Encodes a definition for the store's `entities` table (rules as their specs with creation times). */
export function encodeDefinition(definition: QueueDefinition | TopicProperties | SubscriptionDefinition): string {
  const value: Stored =
    definition.kind === 'subscription'
      ? { ...definition, rules: definition.rules.map((rule) => ({ ...ruleSpecOf(rule), createdAt: rule.createdAt })) }
      : { ...definition };
  return JSON.stringify(value, function (this: Record<string, unknown>, key, item: unknown) {
    const raw = this[key];
    if (raw instanceof Date) return { $date: raw.toISOString() };
    if (typeof raw === 'number' && !Number.isFinite(raw)) return { $number: String(raw) };
    return item;
  });
}

/**
 * Decodes a stored definition. Fields added to definitions since it was written get their defaults.
 *
 * @throws {Error} when the record cannot be read (the caller logs it and leaves the row alone).
 */
export function decodeDefinition(kind: 'queue', text: string): QueueDefinition;
export function decodeDefinition(kind: 'topic', text: string): TopicProperties;
export function decodeDefinition(kind: 'subscription', text: string): SubscriptionDefinition;
export function decodeDefinition(kind: 'queue' | 'topic' | 'subscription', text: string): QueueDefinition | TopicProperties | SubscriptionDefinition;
export function decodeDefinition(kind: 'queue' | 'topic' | 'subscription', text: string): QueueDefinition | TopicProperties | SubscriptionDefinition {
  const value = JSON.parse(text, (_key, item: unknown) => {
    if (item && typeof item === 'object' && !Array.isArray(item)) {
      const tagged = item as { $date?: string; $number?: string };
      if (typeof tagged.$date === 'string' && Object.keys(item).length === 1) return new Date(tagged.$date);
      if (typeof tagged.$number === 'string' && Object.keys(item).length === 1) return Number(tagged.$number);
    }
    return item;
  }) as Stored;
  if (typeof value.name !== 'string') throw new Error('the stored definition has no name');
  switch (kind) {
    case 'queue':
      return { ...defaultQueue(value.name), ...value, kind };
    case 'topic':
      return { ...defaultTopic(value.name), ...value, kind };
    case 'subscription': {
      const rules = (Array.isArray(value.rules) ? value.rules : []) as (RuleSpec & { createdAt?: number })[];
      return {
        ...defaultSubscription(String(value.topic), value.name),
        ...value,
        kind,
        rules: rules.map(({ createdAt, ...spec }) => compileRule(spec, typeof createdAt === 'number' ? createdAt : 0)),
      };
    }
  }
}
