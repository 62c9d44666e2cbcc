import { InvalidScopeError, isArmScope, normalizeScope, scopeContains } from './scope.js';

describe('scopeContains', () => {
  const namespace = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns';

  it.each([
    ['/subscriptions/s', `${namespace}/queues/q`, true],
    ['/subscriptions/s/resourceGroups/rg', `${namespace}/queues/q`, true],
    [namespace, `${namespace}/topics/t/subscriptions/x`, true],
    [`${namespace}/topics/t`, `${namespace}/topics/t/subscriptions/x`, true],
    [`${namespace}/queues/q`, `${namespace}/queues/q`, true],
    [`${namespace}/queues/q`, `${namespace}/queues/q2`, false],
    [`${namespace}/queues/q2`, `${namespace}/queues/q`, false],
    [`${namespace}/queues/q`, namespace, false],
    ['/subscriptions/s/resourcegroups/RG', `${namespace}/queues/q`, true],
  ])('%s contains %s: %s', (outer, inner, expected) => {
    expect(scopeContains(outer, inner)).toBe(expected);
  });
});

describe('normalizeScope and isArmScope', () => {
  it('normalises slashes and recognises ARM scopes', () => {
    expect(normalizeScope('subscriptions/s/resourceGroups/rg/')).toBe('/subscriptions/s/resourceGroups/rg');
    expect(isArmScope('/subscriptions/s/resourceGroups/rg')).toBe(true);
    expect(isArmScope('serviceBus/queues/q')).toBe(false);
  });

  it.each(['/subscriptions/s/..', '/subscriptions/s/resourceGroups/rg/providers/P/t/n/queues/q/../../..', 'subscriptions/./s'])("refuses %s: a '.' or '..' segment", (scope) => {
    expect(() => normalizeScope(scope)).toThrow(InvalidScopeError);
    expect(() => isArmScope(scope)).toThrow(/has a '\.' or '\.\.' segment/);
  });
});
