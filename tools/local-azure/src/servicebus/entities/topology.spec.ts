import { resolve } from 'node:path';
import { ConfigError, parseConfig, repoRoot } from '../../config/local-azure-config.js';
import { formatIsoDuration, parseIsoDuration } from './iso-duration.js';
import { entityDefaults, loadTopology, parseTopology } from './topology.js';

type Json = Record<string, unknown>;

function file(namespace: Json): Json {
  return { UserConfig: { Namespaces: [{ Name: 'ns', ...namespace }], Logging: { Type: 'Console' } } };
}

function problemsOf(json: unknown): string {
  try {
    parseTopology(json, 'topology.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the topology to be refused');
}

describe('loadTopology', () => {
  it('loads the project’s own topology file with the entity names other services depend on', () => {
    const topology = loadTopology(resolve(repoRoot, 'infra/servicebus-topology.json'));
    expect(topology.queues.map((q) => q.name)).toEqual(['recommendation-requests', 'vision-requests', 'replies', 'diagnostics']);
    expect(topology.topics.map((t) => [t.name, t.subscriptions.map((s) => s.name)])).toEqual([['events', ['vision', 'recommendation']]]);
    const replies = topology.queues.find((q) => q.name === 'replies')!;
    expect(replies).toMatchObject({ requiresSession: true, lockDurationInMs: 30_000, maxDeliveryCount: 3, defaultMessageTimeToLiveInMs: 300_000 });
    expect(topology.topics[0]).toMatchObject({ requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindowInMs: 600_000 });
  });

  it('names a missing file', () => {
    expect(() => loadTopology('/no/such/topology.json')).toThrow('/no/such/topology.json: Service Bus topology file not found');
  });
});

describe('parseTopology', () => {
  it('fills Azure’s defaults for absent properties and gives rule-less subscriptions the $Default rule', () => {
    const topology = parseTopology(file({ Queues: [{ Name: 'q' }], Topics: [{ Name: 't', Subscriptions: [{ Name: 's' }] }] }), 'topology.json');
    expect(topology.queues[0]).toMatchObject({
      lockDurationInMs: entityDefaults.lockDurationInMs,
      maxDeliveryCount: 10,
      defaultMessageTimeToLiveInMs: Number.POSITIVE_INFINITY,
      requiresSession: false,
      requiresDuplicateDetection: false,
    });
    const [rule] = topology.topics[0]!.subscriptions[0]!.rules;
    expect(rule).toMatchObject({ name: '$Default', filterText: '1=1' });
    expect(rule!.matches({ system: {}, user: {} })).toBe(true);
  });

  it('gives a subscription written "Rules": [] the $Default rule, as the official emulator does', () => {
    const topology = parseTopology(file({ Topics: [{ Name: 't', Subscriptions: [{ Name: 's', Rules: [] }] }] }), 'topology.json');
    const rules = topology.topics[0]!.subscriptions[0]!.rules;
    expect(rules.map((rule) => [rule.name, rule.filterType])).toEqual([['$Default', 'True']]);
    expect(rules[0]!.matches({ system: {}, user: {} })).toBe(true);
  });

  describe('when the file is one the official emulator accepts', () => {
    // The shapes of the emulator's documented sample configuration: every property given, "" for no
    // forwarding, correlation filters on every system field, a SQL filter with an action on sys.To.
    const emulatorFile = {
      UserConfig: {
        Namespaces: [
          {
            Name: 'sbemulatorns',
            Queues: [
              {
                Name: 'queue.1',
                Properties: {
                  DeadLetteringOnMessageExpiration: false,
                  DefaultMessageTimeToLive: 'PT1H',
                  DuplicateDetectionHistoryTimeWindow: 'PT20S',
                  ForwardDeadLetteredMessagesTo: '',
                  ForwardTo: '',
                  LockDuration: 'PT1M',
                  MaxDeliveryCount: 3,
                  RequiresDuplicateDetection: false,
                  RequiresSession: false,
                },
              },
              { Name: 'orders/eu', Properties: { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT10S' } },
            ],
            Topics: [
              {
                Name: 'topic.1',
                Properties: { DefaultMessageTimeToLive: 'PT1H', DuplicateDetectionHistoryTimeWindow: 'PT20S', RequiresDuplicateDetection: false },
                Subscriptions: [
                  {
                    Name: 'subscription.1',
                    Properties: { DeadLetteringOnMessageExpiration: false, DefaultMessageTimeToLive: 'PT1H', LockDuration: 'PT1M', MaxDeliveryCount: 3, ForwardTo: '', RequiresSession: false },
                    Rules: [
                      {
                        Name: 'app-prop-filter-1',
                        Properties: {
                          FilterType: 'Correlation',
                          CorrelationFilter: {
                            ContentType: 'application/text',
                            CorrelationId: 'id1',
                            Label: 'subject1',
                            MessageId: 'msgid1',
                            ReplyTo: 'someQueue',
                            ReplyToSessionId: 'sessionId',
                            SessionId: 'session1',
                            To: 'xyz',
                          },
                        },
                      },
                    ],
                  },
                  { Name: 'subscription.2', Rules: [{ Name: 'user-prop-filter-1', Properties: { FilterType: 'Correlation', CorrelationFilter: { Properties: { prop1: 'value1' } } } }] },
                  {
                    Name: 'subscription.3',
                    Rules: [
                      {
                        Name: 'sql-filter-1',
                        Properties: {
                          FilterType: 'Sql',
                          SqlFilter: { SqlExpression: "sys.MessageId = '123456' AND userProp1 = 'value1'" },
                          Action: { SqlExpression: "SET sys.To = 'Entity'" },
                        },
                      },
                    ],
                  },
                ],
              },
            ],
          },
        ],
        Logging: { Type: 'File' },
      },
    };

    it('loads it, with names containing "." and "/", and rule actions on system properties', () => {
      const topology = parseTopology(emulatorFile, 'Config.json');
      expect(topology.queues.map((q) => q.name)).toEqual(['queue.1', 'orders/eu']);
      expect(topology.queues[0]).toMatchObject({ maxDeliveryCount: 3, lockDurationInMs: 60_000, duplicateDetectionHistoryTimeWindowInMs: 20_000 });
      expect(topology.queues[0]!.forwardTo).toBeUndefined();
      const [, , sql] = topology.topics[0]!.subscriptions;
      const rule = sql!.rules[0]!;
      const input = { system: { MessageId: '123456' }, user: { userProp1: 'value1' } };
      expect(rule.matches(input)).toBe(true);
      expect(rule.compiledAction!.apply(input).system).toEqual({ MessageId: '123456', To: 'Entity' });
    });

    it('accepts the emulator’s shorter duplicate-detection window and warns that Azure would refuse it', () => {
      const topology = parseTopology(emulatorFile, 'Config.json');
      expect(topology.queues[1]!.duplicateDetectionHistoryTimeWindowInMs).toBe(10_000);
      expect(topology.warnings).toEqual([
        'Queues[1] "orders/eu".Properties.DuplicateDetectionHistoryTimeWindow: PT10S is below Azure\'s minimum of PT20S (the emulator accepts it; deploying this file to Azure would fail)',
      ]);
    });

    it('takes an action without an expression for no action, as the emulator’s schema allows it', () => {
      const subscription = { Name: 's', Rules: [{ Name: 'r', Properties: { FilterType: 'Sql', SqlFilter: { SqlExpression: 'a = 1' }, Action: {} } }] };
      const [rule] = parseTopology(file({ Topics: [{ Name: 't', Subscriptions: [subscription] }] }), 'Config.json').topics[0]!.subscriptions[0]!.rules;
      expect([rule!.action, rule!.compiledAction]).toEqual([undefined, undefined]);
    });

    it('uses the filter FilterType names and warns that the other one given is ignored, as the emulator’s schema lets both be there', () => {
      const subscription = {
        Name: 's',
        Rules: [{ Name: 'r', Properties: { FilterType: 'Sql', SqlFilter: { SqlExpression: "a = 'x'" }, CorrelationFilter: { Label: 'ignored' } } }],
      };
      const topology = parseTopology(file({ Topics: [{ Name: 't', Subscriptions: [subscription] }] }), 'Config.json');
      expect(topology.topics[0]!.subscriptions[0]!.rules[0]).toMatchObject({ filterType: 'Sql', filterText: "a = 'x'" });
      expect(topology.warnings).toEqual(['Topics[0] "t".Subscriptions[0] "s".Rules[0] "r".Properties.CorrelationFilter: ignored, FilterType is "Sql"']);
    });

    it('names an unsupported logging type', () => {
      expect(problemsOf({ UserConfig: { ...emulatorFile.UserConfig, Logging: { Type: 'Syslog' } } })).toContain('Logging.Type');
    });
  });

  describe('when the file is invalid', () => {
    it('names the entity and the field of a property out of range', () => {
      expect(problemsOf(file({ Queues: [{ Name: 'orders', Properties: { LockDuration: 'PT1S' } }] }))).toBe(
        'topology.json: Queues[0] "orders".Properties.LockDuration: "PT1S" is outside the allowed range PT5S..PT5M',
      );
    });

    it('names a misspelt property', () => {
      expect(problemsOf(file({ Queues: [{ Name: 'orders', Properties: { LockDurations: 'PT1M' } }] }))).toMatch(
        /Queues\[0\] "orders"\.Properties: Unrecognized key: "LockDurations"/,
      );
    });

    it('names a duration that is not ISO 8601 and a bad delivery count', () => {
      const problems = problemsOf(
        file({ Topics: [{ Name: 'events', Subscriptions: [{ Name: 'sub', Properties: { DefaultMessageTimeToLive: '1 hour', MaxDeliveryCount: 0 } }] }] }),
      );
      expect(problems).toContain('Topics[0] "events".Subscriptions[0] "sub".Properties.DefaultMessageTimeToLive: "1 hour" is not an ISO 8601 duration');
      expect(problems).toContain('Topics[0] "events".Subscriptions[0] "sub".Properties.MaxDeliveryCount: Too small');
    });

    it('refuses duplicate names (case-insensitive, queues and topics share them)', () => {
      expect(problemsOf(file({ Queues: [{ Name: 'Orders' }], Topics: [{ Name: 'orders' }] }))).toContain(
        'Topics[0] "orders": the name "orders" is already used by Queues[0] "Orders"',
      );
    });

    it('names a rule whose SQL filter does not parse, with the position', () => {
      const subscription = { Name: 'red', Rules: [{ Name: 'r', Properties: { FilterType: 'Sql', SqlFilter: { SqlExpression: "color = 'red" } } }] };
      expect(problemsOf(file({ Topics: [{ Name: 't', Subscriptions: [subscription] }] }))).toContain(
        'Topics[0] "t".Subscriptions[0] "red".Rules[0] "r".Properties.SqlFilter.SqlExpression: at character 9: string literal is not closed',
      );
    });

    it('refuses a filter type without its filter', () => {
      const subscription = { Name: 's', Rules: [{ Name: 'r', Properties: { FilterType: 'Correlation' } }] };
      expect(problemsOf(file({ Topics: [{ Name: 't', Subscriptions: [subscription] }] }))).toContain(
        '"r".Properties.CorrelationFilter: required when FilterType is "Correlation"',
      );
    });

    it('refuses forwarding to an unknown entity, loops, and chains over four hops', () => {
      expect(problemsOf(file({ Queues: [{ Name: 'a', Properties: { ForwardTo: 'nowhere' } }] }))).toContain(
        'Queues[0] "a".Properties.ForwardTo: no queue or topic named "nowhere"',
      );
      expect(problemsOf(file({ Queues: [{ Name: 'a', Properties: { ForwardTo: 'b' } }, { Name: 'b', Properties: { ForwardTo: 'a' } }] }))).toContain(
        'forwarding loop a → b → a',
      );
      const chain = ['q1', 'q2', 'q3', 'q4', 'q5', 'q6'].map((name, i, all) => ({ Name: name, Properties: all[i + 1] ? { ForwardTo: all[i + 1] } : {} }));
      expect(problemsOf(file({ Queues: chain }))).toContain('has more than 4 hops');
    });

    it('names an entity name Azure refuses', () => {
      expect(problemsOf(file({ Queues: [{ Name: 'orders/Subscriptions/x' }] }))).toContain(
        'Queues[0] "orders/Subscriptions/x".Name: "orders/Subscriptions/x" must not contain the path segment "Subscriptions"',
      );
      expect(problemsOf(file({ Topics: [{ Name: 't', Subscriptions: [{ Name: 'a/b' }] }] }))).toContain('Subscriptions[0] "a/b".Name: "a/b" may contain letters');
      expect(problemsOf(file({ Queues: [{ Name: 'a/../b' }] }))).toContain('"a/../b" must not contain the path segment "." or ".."');
    });

    it('refuses more than one namespace', () => {
      expect(problemsOf({ UserConfig: { Namespaces: [{ Name: 'a' }, { Name: 'b' }] } })).toContain('exactly one namespace');
    });
  });
});

describe('parseIsoDuration', () => {
  it.each([
    ['PT30S', 30_000],
    ['PT5M', 300_000],
    ['PT1H', 3_600_000],
    ['P7D', 604_800_000],
    ['P1DT2H', 93_600_000],
    ['PT0.5S', 500],
    ['P1W', 604_800_000],
  ])('parses %s', (text, ms) => {
    expect(parseIsoDuration(text)).toBe(ms);
    expect(parseIsoDuration(formatIsoDuration(ms))).toBe(ms);
  });

  it.each(['P', 'PT', '30S', 'P1Y', 'P1M', 'PT-5S'])('refuses %s', (text) => {
    expect(parseIsoDuration(text)).toBeUndefined();
  });
});

describe('Service Bus configuration', () => {
  it('defaults to the project topology, the 256 KiB Standard-tier message size, a 30-second re-check of open links and Azure’s closing of connections without links', () => {
    expect(parseConfig({}).resources.serviceBus).toEqual({
      name: 'sb-keyless-local',
      topologyFile: 'infra/servicebus-topology.json',
      maxMessageSizeInBytes: 262_144,
      reauthorizationIntervalInSeconds: 30,
      maxConnections: 5000,
      linklessConnectionTimeouts: { newConnectionInMs: 60_000, afterLastLinkInMs: 300_000 },
    });
  });

  it('refuses a re-check interval outside 1–300 seconds, naming the field', () => {
    expect(() => parseConfig({ resources: { serviceBus: { reauthorizationIntervalInSeconds: 0 } } })).toThrow(/resources\.serviceBus\.reauthorizationIntervalInSeconds/);
    expect(() => parseConfig({ resources: { serviceBus: { reauthorizationIntervalInSeconds: 301 } } })).toThrow(/reauthorizationIntervalInSeconds/);
  });
});
