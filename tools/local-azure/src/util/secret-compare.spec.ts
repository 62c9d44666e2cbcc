import { secretDigest, secretEquals } from './secret-compare.js';

describe('secretEquals', () => {
  it.each([
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['ab', 'abc', false],
    ['abcd', 'abc', false],
    [undefined, 'abc', false],
    ['', '', false],
  ])('%j vs %j: %s', (presented, expected, result) => {
    expect(secretEquals(presented, expected)).toBe(result);
  });
});

describe('secretDigest', () => {
  it('gives a fixed-length digest that differs from the secret', () => {
    expect(secretDigest('s')).toMatch(/^[0-9a-f]{64}$/);
    expect(secretDigest('s')).toBe(secretDigest('s'));
    expect(secretDigest('s')).not.toBe(secretDigest('t'));
  });
});
