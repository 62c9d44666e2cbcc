import { sqlLiteral } from './sql-literals.js';

describe('sqlLiteral', () => {
  it('quotes and escapes strings so they stay strings', () => {
    expect(sqlLiteral.text("it's")).toBe("'it''s'");
    expect(sqlLiteral.text("x'); DROP TABLE t; --")).toBe("'x''); DROP TABLE t; --'");
    expect(sqlLiteral.text('back\\slash')).toBe(" E'back\\\\slash'");
  });

  it('writes numbers, integers, text arrays and vectors', () => {
    expect(sqlLiteral.number(19.99)).toBe('19.99');
    expect(sqlLiteral.integer(10)).toBe('10');
    expect(sqlLiteral.textArray(['a', "b'"])).toBe("ARRAY['a', 'b''']::text[]");
    expect(sqlLiteral.textArray([])).toBe("'{}'::text[]");
    expect(sqlLiteral.vector(new Float32Array([0.5, -1]))).toBe("'[0.5,-1]'::vector");
  });

  it.each([
    ['number', Number.NaN],
    ['number', Number.POSITIVE_INFINITY],
    ['integer', 1.5],
    ['integer', -1],
  ] as const)('refuses what it cannot write safely (%s %p)', (kind, value) => {
    expect(() => sqlLiteral[kind](value)).toThrow(TypeError);
  });

  it('refuses a vector with a NaN', () => {
    expect(() => sqlLiteral.vector([1, Number.NaN])).toThrow(TypeError);
  });
});
