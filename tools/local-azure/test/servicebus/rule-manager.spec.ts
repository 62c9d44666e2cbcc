import { ServiceBusAdministrationClient, type ServiceBusClient, type ServiceBusRuleManager, type RuleProperties } from '@azure/service-bus';
import { receiveExactly, rejectionOf, startServiceBus, type TestServiceBus } from './support.js';

// ServiceBusRuleManager over the subscription's $management node: add, remove and enumerate rules with
// the SDK's encodings, and routing that follows a change from the next message on.
describe('Service Bus rule management (ServiceBusRuleManager)', () => {
  let bus: TestServiceBus;
  let client: ServiceBusClient;
  let admin: ServiceBusAdministrationClient;

  async function rulesOf(manager: ServiceBusRuleManager): Promise<RuleProperties[]> {
    const rules: RuleProperties[] = [];
    for await (const rule of manager.listRules()) if (rule) rules.push(rule);
    return rules;
  }

  async function bodiesOf(topic: string, subscription: string, expected: number): Promise<unknown[]> {
    const receiver = client.createReceiver(topic, subscription, { receiveMode: 'receiveAndDelete' });
    const received = expected ? await receiveExactly(receiver, expected) : [];
    expect(await receiver.receiveMessages(10, { maxWaitTimeInMs: 100 })).toEqual([]);
    await receiver.close();
    return received.map((m) => m.body);
  }

  beforeAll(async () => {
    bus = await startServiceBus();
    bus.grantDataOwner();
    client = bus.client();
    admin = new ServiceBusAdministrationClient(bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE!, bus.credential);
    await admin.createTopic('rules-topic');
  }, 30_000);
  afterAll(() => bus.stop());

  it('enumerates a new subscription’s $Default rule (true filter, no action)', async () => {
    await admin.createSubscription('rules-topic', 'fresh');
    expect(await rulesOf(client.createRuleManager('rules-topic', 'fresh'))).toEqual([{ name: '$Default', filter: { sqlExpression: '1=1' }, action: {} }]);
  });

  it('adds SQL and correlation rules with every field, and enumerates them by name, in pages', async () => {
    await admin.createSubscription('rules-topic', 'listed');
    const manager = client.createRuleManager('rules-topic', 'listed');
    await manager.createRule('sql', { sqlExpression: 'price > 10' }, { sqlExpression: "SET tier = 'gold'" });
    const when = new Date('2000-01-01T00:00:00Z');
    const correlation = {
      correlationId: 'c-1',
      messageId: 'm-1',
      to: 'to',
      replyTo: 'reply',
      subject: 'label',
      sessionId: 's-1',
      replyToSessionId: 'rs-1',
      contentType: 'application/json',
      applicationProperties: { text: 'v', count: 2, negative: -3, ratio: 0.5, flag: true, when },
    };
    await manager.createRule('correlation', correlation);
    expect(await rulesOf(manager)).toEqual([
      { name: '$Default', filter: { sqlExpression: '1=1' }, action: {} },
      { name: 'correlation', filter: correlation, action: {} },
      { name: 'sql', filter: { sqlExpression: 'price > 10' }, action: { sqlExpression: "SET tier = 'gold'" } },
    ]);
    const pages: string[][] = [];
    for await (const page of manager.listRules().byPage({ maxPageSize: 2 })) pages.push(page.map((rule) => rule.name));
    expect(pages).toEqual([['$Default', 'correlation'], ['sql']]);
  });

  it('routes the next message by the rules as changed: added, removed, with actions on application and system properties', async () => {
    await admin.createSubscription('rules-topic', 'routed');
    const manager = client.createRuleManager('rules-topic', 'routed');
    const sender = client.createSender('rules-topic');
    await manager.deleteRule('$Default');
    await sender.sendMessages({ body: 'no rules' });
    expect(await bodiesOf('rules-topic', 'routed', 0)).toEqual([]);
    await manager.createRule('red', { sqlExpression: "color = 'red'" }, { sqlExpression: "SET seen = 'yes'; SET sys.Label = 'painted'" });
    await sender.sendMessages([
      { body: 'red', applicationProperties: { color: 'red' } },
      { body: 'blue', applicationProperties: { color: 'blue' } },
    ]);
    const [red] = await receiveExactly(client.createReceiver('rules-topic', 'routed', { receiveMode: 'receiveAndDelete' }), 1);
    expect([red!.body, red!.applicationProperties, red!.subject]).toEqual(['red', { color: 'red', seen: 'yes' }, 'painted']);
    await manager.createRule('urgent', { subject: 'urgent', applicationProperties: { priority: 1 } });
    await sender.sendMessages([
      { body: 'urgent', subject: 'urgent', applicationProperties: { priority: 1 } },
      { body: 'not so', subject: 'urgent', applicationProperties: { priority: 2 } },
    ]);
    expect(await bodiesOf('rules-topic', 'routed', 1)).toEqual(['urgent']);
    await manager.deleteRule('red');
    await manager.deleteRule('urgent');
    await sender.sendMessages({ body: 'red again', applicationProperties: { color: 'red' } });
    expect(await bodiesOf('rules-topic', 'routed', 0)).toEqual([]);
  });

  it('answers a duplicate with MessagingEntityAlreadyExists and a missing rule with MessagingEntityNotFound', async () => {
    await admin.createSubscription('rules-topic', 'errors');
    const manager = client.createRuleManager('rules-topic', 'errors');
    const duplicate = await rejectionOf(manager.createRule('$Default', { sqlExpression: '1=1' }));
    expect(duplicate).toMatchObject({ code: 'MessagingEntityAlreadyExists' });
    expect(duplicate.message).toMatch(/The messaging entity 'rules-topic\/Subscriptions\/errors\/Rules\/\$Default' already exists/);
    const missing = await rejectionOf(manager.deleteRule('nope'));
    expect(missing).toMatchObject({ code: 'MessagingEntityNotFound' });
    const invalid = await rejectionOf(manager.createRule('bad', { sqlExpression: 'color = ' }));
    expect(invalid.message).toMatch(/The SQL of rule 'bad' is invalid at character 9: expected a value/);
  });

  it('enumerates true and false filters created through the management API, and routes by them', async () => {
    await admin.createSubscription('rules-topic', 'constant');
    await admin.deleteRule('rules-topic', 'constant', '$Default');
    // The SDK writes SQL filters only: a FalseFilter comes from another client, here a raw ATOM request.
    const token = (await bus.credential.getToken('https://servicebus.azure.net//.default'))!.token;
    const response = await fetch(`https://${bus.env.SERVICEBUS_FULLY_QUALIFIED_NAMESPACE}/rules-topic/Subscriptions/constant/Rules/never?api-version=2021-05`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/atom+xml;type=entry;charset=utf-8' },
      body:
        '<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml"><RuleDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">' +
        '<Filter i:type="FalseFilter"/><Action i:type="EmptyRuleAction"/></RuleDescription></content></entry>',
    });
    expect(response.status).toBe(201);
    const manager = client.createRuleManager('rules-topic', 'constant');
    expect(await rulesOf(manager)).toEqual([{ name: 'never', filter: { sqlExpression: '1=0' }, action: {} }]);
    await client.createSender('rules-topic').sendMessages({ body: 'filtered out' });
    expect(await bodiesOf('rules-topic', 'constant', 0)).toEqual([]);
    expect(await admin.getRule('rules-topic', 'constant', 'never')).toMatchObject({ filter: { sqlExpression: '1=0' } });
  });

  it('answers MessagingEntityNotFound for a subscription that does not exist', async () => {
    const refused = await rejectionOf(client.createRuleManager('orders', 'x').listRules().next());
    expect(refused).toMatchObject({ code: 'MessagingEntityNotFound' });
  });
});
