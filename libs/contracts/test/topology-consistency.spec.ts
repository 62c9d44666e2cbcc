import { readFileSync } from 'node:fs';
import { eventContracts, eventDeliveryAttempts, queues, requestContracts, subscriptions, topics } from '../src/index.js';

interface Topology {
  UserConfig: {
    Namespaces: {
      Queues: { Name: string; Properties: { RequiresSession?: boolean } }[];
      Topics: {
        Name: string;
        Subscriptions: { Name: string; Properties: { MaxDeliveryCount?: number }; Rules: { Properties: { FilterType: string; CorrelationFilter?: { Label?: string } } }[] }[];
      }[];
    }[];
  };
}

const topology = JSON.parse(readFileSync(new URL('../../../infra/servicebus-topology.json', import.meta.url), 'utf8')) as Topology;
const namespace = topology.UserConfig.Namespaces[0]!;

// The topology file is what the local broker and the Bicep deployment create; the contracts are what
// the code sends and receives. A mismatch is a message that goes nowhere.
describe('servicebus-topology.json against the message contracts', () => {
  it('declares exactly the queues the contracts name', () => {
    expect(namespace.Queues.map((q) => q.Name).sort()).toEqual(Object.values(queues).sort());
  });

  it('routes every request pattern to a declared queue', () => {
    for (const contract of Object.values(requestContracts)) {
      expect(namespace.Queues.map((q) => q.Name)).toContain(contract.queue);
    }
  });

  it('makes the replies queue session-enabled (each client instance reads its own session)', () => {
    expect(namespace.Queues.find((q) => q.Name === queues.replies)?.Properties.RequiresSession).toBe(true);
  });

  it('declares exactly the topics and subscriptions the contracts name', () => {
    expect(namespace.Topics.map((t) => t.Name)).toEqual(Object.values(topics));
    expect(namespace.Topics[0]!.Subscriptions.map((s) => s.Name).sort()).toEqual(Object.values(subscriptions).sort());
  });

  it("lets every subscription redeliver an event as often as the services retry it, so the broker never cuts a retry short", () => {
    for (const subscription of namespace.Topics[0]!.Subscriptions) {
      // Azure's default MaxDeliveryCount is 10.
      expect(subscription.Properties.MaxDeliveryCount ?? 10).toBeGreaterThanOrEqual(eventDeliveryAttempts);
    }
  });

  it('lets each subscription select exactly the events the contracts give it, by subject', () => {
    for (const subscription of namespace.Topics[0]!.Subscriptions) {
      const selected = subscription.Rules.map((rule) => {
        expect(rule.Properties.FilterType).toBe('Correlation');
        return rule.Properties.CorrelationFilter?.Label;
      });
      const expected = Object.entries(eventContracts)
        .filter(([, contract]) => (contract.consumers as readonly string[]).includes(subscription.Name))
        .map(([pattern]) => pattern);
      expect(selected.sort()).toEqual(expected.sort());
    }
  });
});
