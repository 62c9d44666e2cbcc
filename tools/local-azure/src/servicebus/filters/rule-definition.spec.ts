import { compileRule, defaultRule } from './rule-definition.js';
import { SqlSyntaxError } from './sql-filter.js';

describe('compileRule', () => {
  it('matches a correlation filter on system fields as exact strings and properties by value (dates by instant)', () => {
    const when = new Date('2000-01-01T00:00:00Z');
    const rule = compileRule({ name: 'c', filter: { type: 'correlation', label: 'Order', properties: { n: 2, when, ok: true } } }, 0);
    expect(rule).toMatchObject({ filterType: 'Correlation', filterText: 'Label=Order, n=2, when=2000-01-01T00:00:00.000Z, ok=true' });
    expect(rule.matches({ system: { Label: 'Order' }, user: { n: 2, when: new Date(when.getTime()), ok: true } })).toBe(true);
    expect(rule.matches({ system: { Label: 'order' }, user: { n: 2, when, ok: true } })).toBe(false);
    expect(rule.matches({ system: { Label: 'Order' }, user: { n: '2', when, ok: true } })).toBe(false);
  });

  it('gives true and false filters their constant outcome, and $Default is a true filter without action', () => {
    expect(compileRule({ name: 'f', filter: { type: 'false' } }, 0).matches({ system: {}, user: {} })).toBe(false);
    const rule = defaultRule(5);
    expect(rule).toMatchObject({ name: '$Default', filterType: 'True', filterText: '1=1', createdAt: 5 });
    expect([rule.action, rule.compiledAction]).toEqual([undefined, undefined]);
  });

  it('compiles the action with the rule', () => {
    const rule = compileRule({ name: 's', filter: { type: 'sql', expression: 'a = @a', parameters: { '@a': 1 } }, action: { expression: 'SET b = 2' } }, 0);
    const input = { system: {}, user: { a: 1 } };
    expect(rule.matches(input)).toBe(true);
    expect(rule.compiledAction!.apply(input).user).toEqual({ a: 1, b: 2 });
  });

  it('refuses expressions longer than Service Bus’s 1024 characters', () => {
    const long = `a = '${'x'.repeat(1100)}'`;
    expect(() => compileRule({ name: 'l', filter: { type: 'sql', expression: long } }, 0)).toThrow(SqlSyntaxError);
    expect(() => compileRule({ name: 'l', filter: { type: 'true' }, action: { expression: `SET ${long}` } }, 0)).toThrow(/Service Bus allows 1024/);
  });
});
