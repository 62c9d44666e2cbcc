import { readFileSync } from 'node:fs';
import type { InfraProblem } from './infra-problem.js';

/** A rule of a subscription, as the emulator's Config.json writes it. */
export interface TopologyRule {
  Name: string;
  Properties?: {
    FilterType?: string;
    CorrelationFilter?: Record<string, unknown>;
    SqlFilter?: { SqlExpression?: string };
    Action?: { SqlExpression?: string };
  };
}

/** The entities of the topology file's (single) namespace, flattened. */
export interface Topology {
  namespace: string;
  queues: { name: string; properties: Record<string, unknown> }[];
  topics: { name: string; properties: Record<string, unknown> }[];
  subscriptions: { topic: string; name: string; properties: Record<string, unknown>; rules: TopologyRule[] }[];
}

interface RawEntity {
  Name?: unknown;
  Properties?: Record<string, unknown>;
}

/**
 * Reads `servicebus-topology.json` (emulator Config.json format) and reports what would not deploy: a missing
 * or repeated name, a queue and a topic sharing a name (one namespace, one name space), an unknown filter type,
 * or more than the one namespace the deployment creates.
 */
export function readTopology(path: string, file: string): { topology?: Topology; problems: InfraProblem[] } {
  const problems: InfraProblem[] = [];
  const problem = (code: InfraProblem['code'], entry: string, message: string, fix: string): void => {
    problems.push({ code, file, entry, message, fix });
  };
  let json: { UserConfig?: { Namespaces?: (RawEntity & { Queues?: RawEntity[]; Topics?: (RawEntity & { Subscriptions?: (RawEntity & { Rules?: TopologyRule[] })[] })[] })[] } };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    problem('topology-invalid', 'file', `cannot be read as JSON (${(error as Error).message}).`, 'Write valid JSON in the Service Bus emulator Config.json format.');
    return { problems };
  }
  const namespaces = json.UserConfig?.Namespaces ?? [];
  if (namespaces.length !== 1) {
    problem('topology-invalid', 'UserConfig.Namespaces', `declares ${namespaces.length} namespaces; the deployment creates exactly one.`, 'Keep one namespace in UserConfig.Namespaces.');
    if (!namespaces.length) return { problems };
  }
  const namespace = namespaces[0]!;
  const at = 'UserConfig.Namespaces[0]';
  const names = (entities: RawEntity[] | undefined, where: string): string[] =>
    (entities ?? []).map((entity, i) => {
      if (typeof entity.Name !== 'string' || !entity.Name) {
        problem('topology-invalid', `${where}[${i}].Name`, 'has no name.', 'Give every entity a Name.');
        return '';
      }
      return entity.Name;
    });
  const reportDuplicates = (list: string[], where: string, what: string): void => {
    const first = new Map<string, number>();
    list.forEach((name, i) => {
      if (!name) return;
      const earlier = first.get(name.toLowerCase());
      if (earlier === undefined) first.set(name.toLowerCase(), i);
      else {
        problem('duplicate-entity', `${where}[${i}].Name`, `${what} "${name}" is declared twice (also ${where}[${earlier}]).`, `Remove one of the two declarations of "${name}" (names are case-insensitive in Service Bus).`);
      }
    });
  };

  const queueNames = names(namespace.Queues, `${at}.Queues`);
  const topicNames = names(namespace.Topics, `${at}.Topics`);
  reportDuplicates(queueNames, `${at}.Queues`, 'queue');
  reportDuplicates(topicNames, `${at}.Topics`, 'topic');
  topicNames.forEach((name, i) => {
    if (name && queueNames.some((queue) => queue.toLowerCase() === name.toLowerCase())) {
      problem('duplicate-entity', `${at}.Topics[${i}].Name`, `"${name}" names both a queue and a topic; a namespace has one name space for both.`, 'Rename the queue or the topic.');
    }
  });

  const topology: Topology = {
    namespace: typeof namespace.Name === 'string' ? namespace.Name : '',
    queues: (namespace.Queues ?? []).map((queue, i) => ({ name: queueNames[i]!, properties: queue.Properties ?? {} })),
    topics: (namespace.Topics ?? []).map((topic, i) => ({ name: topicNames[i]!, properties: topic.Properties ?? {} })),
    subscriptions: [],
  };
  (namespace.Topics ?? []).forEach((topic, t) => {
    const where = `${at}.Topics[${t}].Subscriptions`;
    const subscriptionNames = names(topic.Subscriptions, where);
    reportDuplicates(subscriptionNames, where, `subscription of topic "${topicNames[t]}"`);
    (topic.Subscriptions ?? []).forEach((subscription, s) => {
      const rules = subscription.Rules ?? [];
      const ruleNames = names(rules, `${where}[${s}].Rules`);
      reportDuplicates(ruleNames, `${where}[${s}].Rules`, `rule of subscription "${subscriptionNames[s]}"`);
      rules.forEach((rule, r) => {
        const type = rule.Properties?.FilterType;
        if (type !== 'Correlation' && type !== 'Sql') {
          problem('topology-invalid', `${where}[${s}].Rules[${r}].Properties.FilterType`, `is ${JSON.stringify(type)}; the deployment knows "Correlation" and "Sql".`, 'Use a Correlation filter (or Sql).');
        }
        if (ruleNames[r]?.toLowerCase() === '$default') {
          problem('topology-invalid', `${where}[${s}].Rules[${r}].Name`, 'is "$Default", which the deployment reserves to switch off the catch-all rule.', 'Give the rule a name of its own.');
        }
      });
      topology.subscriptions.push({ topic: topicNames[t]!, name: subscriptionNames[s]!, properties: subscription.Properties ?? {}, rules });
    });
  });
  return { topology, problems };
}
