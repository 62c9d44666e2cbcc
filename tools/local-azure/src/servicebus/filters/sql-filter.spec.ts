import { compileSqlAction, compileSqlFilter, SqlSyntaxError, type FilterInput } from './sql-filter.js';

const message = (user: Record<string, unknown>, system: FilterInput['system'] = {}): FilterInput => ({ system, user });

describe('compileSqlFilter', () => {
  describe('when comparing', () => {
    it.each([
      ["color = 'red'", { color: 'red' }, true],
      ["color = 'red'", { color: 'blue' }, false],
      ["color <> 'red'", { color: 'blue' }, true],
      ["color != 'red'", { color: 'red' }, false],
      ['quantity > 5', { quantity: 6 }, true],
      ['quantity >= 5.5', { quantity: 5.5 }, true],
      ['quantity < -1', { quantity: -2 }, true],
      ['quantity <= 2 * 3 - 1', { quantity: 5 }, true],
      ['quantity % 2 = 0', { quantity: 4 }, true],
      ["name < 'b'", { name: 'alpha' }, true],
      ['flag = TRUE', { flag: true }, true],
      ['1 = 1', {}, true],
      ['1 = 0', {}, false],
    ])('evaluates %s', (expression, user, expected) => {
      expect(compileSqlFilter(expression).matches(message(user))).toBe(expected);
    });
  });

  describe('when a property is missing or has another type (SQL unknown)', () => {
    it.each([
      ["color = 'red'", {}],
      ["color <> 'red'", {}],
      ['quantity > 5', { quantity: '7' }],
      ["NOT color = 'red'", {}],
      ['quantity / 0 = 1', { quantity: 1 }],
    ])('does not match %s', (expression, user) => {
      expect(compileSqlFilter(expression).matches(message(user))).toBe(false);
    });

    it('lets OR succeed when one side is true and AND fail when one side is false', () => {
      expect(compileSqlFilter("missing = 1 OR color = 'red'").matches(message({ color: 'red' }))).toBe(true);
      expect(compileSqlFilter("missing = 1 AND color = 'red'").matches(message({ color: 'red' }))).toBe(false);
    });
  });

  it('tests presence with IS [NOT] NULL and EXISTS', () => {
    expect(compileSqlFilter('region IS NULL').matches(message({}))).toBe(true);
    expect(compileSqlFilter('region IS NOT NULL').matches(message({ region: 'eu' }))).toBe(true);
    expect(compileSqlFilter('EXISTS(region)').matches(message({ region: 'eu' }))).toBe(true);
    expect(compileSqlFilter('NOT EXISTS(region)').matches(message({}))).toBe(true);
  });

  it('matches LIKE patterns with %, _ and ESCAPE', () => {
    const like = (pattern: string, value: string): boolean => compileSqlFilter(`v LIKE ${pattern}`).matches(message({ v: value }));
    expect(like("'order.%'", 'order.created')).toBe(true);
    expect(like("'order._'", 'order.x')).toBe(true);
    expect(like("'order._'", 'order.xy')).toBe(false);
    expect(like("'100!%' ESCAPE '!'", '100%')).toBe(true);
    expect(like("'100!%' ESCAPE '!'", '1000')).toBe(false);
    expect(compileSqlFilter("v NOT LIKE 'a%'").matches(message({ v: 'banana' }))).toBe(true);
    expect(like("'%a%b%'", 'xxaxxbxx')).toBe(true);
    expect(like("'%a%b'", 'xxbxxa')).toBe(false);
    expect(like("'a%%_'", 'a')).toBe(false);
    expect(like("'a%%_'", 'ab')).toBe(true);
    expect(like("'%'", '')).toBe(true);
    expect(like("'_'", '')).toBe(false);
    expect(like("'%ab'", 'aab')).toBe(true);
    expect(like("'a!_%' ESCAPE '!'", 'a_x')).toBe(true);
    expect(like("'a!_%' ESCAPE '!'", 'abx')).toBe(false);
    expect(like("'.*'", 'xyz')).toBe(false);
  });

  it('matches LIKE in time proportional to the pattern and the text, however many % it has', () => {
    const timed = (pattern: string, value: string): { matched: boolean; elapsedInMs: number } => {
      const filter = compileSqlFilter(`v LIKE '${pattern}'`);
      const started = performance.now();
      const matched = filter.matches(message({ v: value }));
      return { matched, elapsedInMs: performance.now() - started };
    };
    // As a regular expression, this took some 4 s (and 33 s for 200 a's; each further % multiplies it).
    const few = timed('%a%a%a%a%b', 'a'.repeat(120));
    expect(few.matched).toBe(false);
    expect(few.elapsedInMs).toBeLessThan(250);
    const many = timed(`${'%a'.repeat(20)}%b`, 'a'.repeat(1000));
    expect(many.matched).toBe(false);
    expect(many.elapsedInMs).toBeLessThan(250);
  });

  it('matches IN and NOT IN lists', () => {
    expect(compileSqlFilter("color IN ('red', 'green')").matches(message({ color: 'green' }))).toBe(true);
    expect(compileSqlFilter('size IN (-1, 2)').matches(message({ size: -1 }))).toBe(true);
    expect(compileSqlFilter("color NOT IN ('red')").matches(message({ color: 'blue' }))).toBe(true);
  });

  it('reads system properties (sys.Label and its alias sys.Subject) and qualified or bracketed user properties', () => {
    const input = message({ 'my prop': 'x', color: 'red' }, { Label: 'order.created', MessageId: 'm-1', SessionId: 's' });
    expect(compileSqlFilter("sys.Label = 'order.created' AND sys.Subject = 'order.created'").matches(input)).toBe(true);
    expect(compileSqlFilter("sys.MessageId = 'm-1' AND sys.SessionId = 's'").matches(input)).toBe(true);
    expect(compileSqlFilter("[my prop] = 'x' AND user.color = 'red' AND COLOR = 'red'").matches(input)).toBe(true);
  });

  it('respects precedence and parentheses', () => {
    expect(compileSqlFilter('a = 1 OR b = 1 AND c = 1').matches(message({ a: 1, b: 0, c: 0 }))).toBe(true);
    expect(compileSqlFilter('(a = 1 OR b = 1) AND c = 1').matches(message({ a: 1, b: 0, c: 0 }))).toBe(false);
  });

  it('unescapes doubled quotes in string literals', () => {
    expect(compileSqlFilter("name = 'O''Brien'").matches(message({ name: "O'Brien" }))).toBe(true);
  });

  describe('when the expression is invalid', () => {
    it.each([
      ["color = 'red", /character 9: string literal is not closed/],
      ['color = ', /expected a value but found the end/],
      ['color = 1 1', /unexpected 1 after the end/],
      ['sys.Colour = 1', /sys\.Colour is not a supported system property/],
      ['color # 1', /unexpected character "#"/],
      ["v LIKE 'a' ESCAPE 'ab'", /ESCAPE takes exactly one character/],
      ['x NOT = 1', /expected LIKE or IN after NOT/],
    ])('refuses %s, saying where and why', (expression, message) => {
      expect(() => compileSqlFilter(expression)).toThrow(SqlSyntaxError);
      expect(() => compileSqlFilter(expression)).toThrow(message);
    });
  });
});

describe('compileSqlAction', () => {
  it('sets and removes application properties, evaluating expressions on the message', () => {
    const action = compileSqlAction("SET stamped = 'yes'; SET doubled = quantity * 2; REMOVE secret");
    expect(action.apply(message({ quantity: 4, secret: 'x', kept: true })).user).toEqual({ quantity: 4, kept: true, stamped: 'yes', doubled: 8 });
  });

  it('sets system properties (SET sys.To, as the official emulator’s sample configuration does) and clears them with NULL', () => {
    const action = compileSqlAction("SET sys.To = 'Entity'; SET sys.Subject = sys.Label + '.seen'; SET sys.CorrelationId = NULL");
    expect(action.apply(message({ a: 1 }, { Label: 'order', CorrelationId: 'c-1' }))).toEqual({ system: { To: 'Entity', Label: 'order.seen' }, user: { a: 1 } });
  });

  it('refuses removing system properties and statements other than SET and REMOVE', () => {
    expect(() => compileSqlAction('REMOVE sys.Label')).toThrow(/system properties can only be SET/);
    expect(() => compileSqlAction('DELETE x')).toThrow(/expected SET or REMOVE/);
    expect(() => compileSqlAction('SET a = 1 SET b = 2')).toThrow(/expected ; between statements/);
  });
});

describe('SQL parameters', () => {
  it('substitutes @parameters in filters and actions, with or without the @ in the parameter name', () => {
    expect(compileSqlFilter('color = @color AND size > @min', { '@color': 'red', min: 2 }).matches(message({ color: 'red', size: 3 }))).toBe(true);
    expect(compileSqlFilter('color = @color', { '@color': 'red' }).matches(message({ color: 'blue' }))).toBe(false);
    expect(compileSqlAction('SET tier = @tier', { '@tier': 'gold' }).apply(message({})).user).toEqual({ tier: 'gold' });
  });

  it('refuses a parameter the rule does not give', () => {
    expect(() => compileSqlFilter('color = @color')).toThrow(/the parameter @color is not defined/);
  });
});
