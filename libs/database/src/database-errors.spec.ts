import { DatabaseError as PgDatabaseError } from 'pg';
import { DatabaseError, describeError, isDatabaseUnavailable } from './database-errors.js';

// Errors as node-postgres and Node surface them (pg's DatabaseError carries the server's SQLSTATE as `code`).
const serverError = (code: string, message: string) => Object.assign(new PgDatabaseError(message, message.length, 'error'), { code });
const systemError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code });

describe(isDatabaseUnavailable.name, () => {
  describe('when the database cannot be used right now', () => {
    it.each([
      ['the server refusing connections', systemError('ECONNREFUSED')],
      ['a reset connection', systemError('ECONNRESET')],
      ['a connection lost mid-query', new Error('Connection terminated unexpectedly')],
      ['the pool timing out', new Error('timeout exceeded when trying to connect')],
      ['an administrator shutdown (57P01)', serverError('57P01', 'terminating connection due to administrator command')],
      ['a server starting up (57P03)', serverError('57P03', 'the database system is starting up')],
      ['too many connections (53300)', serverError('53300', 'sorry, too many clients already')],
      ['a serialization failure (40001)', serverError('40001', 'could not serialize access due to concurrent update')],
      ['no token for the sign-in', Object.assign(new Error('identity endpoint unreachable'), { name: 'TokenAcquisitionError' })],
      ['any of these as a cause', new Error('query failed', { cause: systemError('ECONNREFUSED') })],
    ])('says so for %s', (_, error) => {
      expect(isDatabaseUnavailable(error)).toBe(true);
    });
  });

  describe('when the error is a mistake, not an outage', () => {
    it.each([
      ['a unique violation (23505)', serverError('23505', 'duplicate key value violates unique constraint')],
      ['a syntax error (42601)', serverError('42601', 'syntax error at or near "SELEC"')],
      ['a refused sign-in (28P01)', serverError('28P01', 'password authentication failed for user "id-keyless"')],
      ['a plain error', new Error('boom')],
      ['no error at all', undefined],
    ])('says no for %s', (_, error) => {
      expect(isDatabaseUnavailable(error)).toBe(false);
    });
  });
});

describe(describeError.name, () => {
  it('keeps the first line of the message, with the class name', () => {
    expect(describeError(new DatabaseError('SchemaConflict', 'vectors differ\nfix: re-embed'))).toBe('DatabaseError: vectors differ');
  });
});
