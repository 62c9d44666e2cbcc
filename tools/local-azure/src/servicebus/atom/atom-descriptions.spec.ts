import { DescriptionError, forwardTargetName, readQueue, readRule } from './atom-descriptions.js';
import { parseXml } from './xml.js';

const connect = 'xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"';

describe('readRule', () => {
  it('reads typed correlation properties and SQL parameters as clients other than the SDK write them', () => {
    const rule = readRule(
      parseXml(
        `<RuleDescription ${connect} xmlns:x="http://www.w3.org/2001/XMLSchema"><Filter i:type="CorrelationFilter"><Label>order</Label><CorrelationId i:nil="true"/>` +
          '<Properties><KeyValueOfstringanyType><Key>n</Key><Value i:type="x:int">3</Value></KeyValueOfstringanyType>' +
          '<KeyValueOfstringanyType><Key>at</Key><Value i:type="x:dateTime">2000-01-01T00:00:00Z</Value></KeyValueOfstringanyType>' +
          '<KeyValueOfstringanyType><Key>ok</Key><Value i:type="x:boolean">true</Value></KeyValueOfstringanyType></Properties></Filter>' +
          '<Action i:type="SqlRuleAction"><SqlExpression>SET a = @v</SqlExpression><Parameters><KeyValueOfstringanyType><Key>@v</Key><Value i:type="x:string">s</Value></KeyValueOfstringanyType></Parameters></Action></RuleDescription>',
      ),
      'r',
    );
    expect(rule).toEqual({
      name: 'r',
      filter: { type: 'correlation', label: 'order', properties: { n: 3, at: new Date('2000-01-01T00:00:00Z'), ok: true } },
      action: { expression: 'SET a = @v', parameters: { '@v': 's' } },
    });
  });

  it('reads true and false filters, an empty action, and a missing filter as 1=1', () => {
    expect(readRule(parseXml(`<RuleDescription ${connect}><Filter i:type="TrueFilter"><SqlExpression>1=1</SqlExpression></Filter><Action i:type="EmptyRuleAction"/></RuleDescription>`), 't')).toEqual({
      name: 't',
      filter: { type: 'true' },
    });
    expect(readRule(parseXml(`<RuleDescription ${connect}><Filter i:type="FalseFilter"/></RuleDescription>`), 'f').filter).toEqual({ type: 'false' });
    expect(readRule(parseXml(`<RuleDescription ${connect}/>`), 'd').filter).toEqual({ type: 'sql', expression: '1=1' });
  });

  it.each([
    [`<Filter i:type="LikeFilter"/>`, /The filter type 'LikeFilter' is not supported/],
    [`<Filter i:type="CorrelationFilter"/>`, /needs at least one property to match/],
    [`<Filter i:type="SqlFilter"><SqlExpression> </SqlExpression></Filter>`, /A SqlFilter needs a SqlExpression/],
    [`<Filter i:type="CorrelationFilter"><Properties><KeyValueOfstringanyType><Key>k</Key><Value i:type="i:base64Binary">AA==</Value></KeyValueOfstringanyType></Properties></Filter>`, /the value type 'base64Binary' is not supported/],
  ])('refuses %s with a description of what is wrong', (filter, message) => {
    const parse = (): unknown => readRule(parseXml(`<RuleDescription ${connect}>${filter}</RuleDescription>`), 'r');
    expect(parse).toThrow(DescriptionError);
    expect(parse).toThrow(message);
  });
});

describe('readQueue', () => {
  it('reads .NET TimeSpan.MaxValue as never and keeps the fixed properties of an existing queue', () => {
    const existing = readQueue(parseXml(`<QueueDescription ${connect}><RequiresSession>true</RequiresSession></QueueDescription>`), 'q');
    const updated = readQueue(
      parseXml(`<QueueDescription ${connect}><DefaultMessageTimeToLive>P10675199DT2H48M5.4775807S</DefaultMessageTimeToLive><MaxDeliveryCount>4</MaxDeliveryCount></QueueDescription>`),
      'q',
      existing,
    );
    expect(updated).toMatchObject({ defaultMessageTimeToLiveInMs: Number.POSITIVE_INFINITY, maxDeliveryCount: 4, requiresSession: true });
  });

  it('refuses out-of-range and malformed values, naming the property', () => {
    expect(() => readQueue(parseXml(`<QueueDescription ${connect}><MaxSizeInMegabytes>100</MaxSizeInMegabytes></QueueDescription>`), 'q')).toThrow(
      /The value '100' of the Queue property MaxSizeInMegabytes is invalid: expected one of 1024, 2048, 3072, 4096, 5120/,
    );
    expect(() => readQueue(parseXml(`<QueueDescription ${connect}><RequiresSession>yes</RequiresSession></QueueDescription>`), 'q')).toThrow(/expected true or false/);
    expect(() => readQueue(parseXml(`<QueueDescription ${connect}><Status>Paused</Status></QueueDescription>`), 'q')).toThrow(/expected Active, Disabled, SendDisabled, ReceiveDisabled/);
  });
});

describe('forwardTargetName', () => {
  it('takes the entity name from an sb:// address (the SDK sends absolute ones) or a bare name', () => {
    expect(forwardTargetName('sb://localhost:5671/orders/eu')).toBe('orders/eu');
    expect(forwardTargetName(' orders ')).toBe('orders');
    expect(forwardTargetName('')).toBeUndefined();
  });
});
