import pg from 'pg';

/**
 * SQL literals, for the few statements sent with the simple query protocol: several statements in one round trip
 * (`BEGIN; SET LOCAL …; SELECT …; COMMIT`), which takes no parameters. Each function accepts only what it can write
 * safely and throws otherwise; everything else goes through parameters.
 */
export const sqlLiteral = {
  /** A string, quoted and escaped as PostgreSQL reads it (node-postgres's `escapeLiteral`). */
  text(value: string): string {
    if (typeof value !== 'string') throw new TypeError(`not a string: ${typeof value}`);
    return pg.escapeLiteral(value);
  },

  /** A finite number. */
  number(value: number): string {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`not a finite number: ${String(value)}`);
    return String(value);
  },

  /** A non-negative integer. */
  integer(value: number): string {
    if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`not a non-negative integer: ${String(value)}`);
    return String(value);
  },

  /** A `text[]` of the strings. */
  textArray(values: readonly string[]): string {
    return values.length ? `ARRAY[${values.map((v) => sqlLiteral.text(v)).join(', ')}]::text[]` : `'{}'::text[]`;
  },

  /** A pgvector `vector` of the numbers. */
  vector(values: ArrayLike<number>): string {
    return `'[${Array.from(values, (v) => sqlLiteral.number(v)).join(',')}]'::vector`;
  },
};
