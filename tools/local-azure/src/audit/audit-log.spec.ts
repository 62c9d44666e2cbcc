import { DatabaseSync } from 'node:sqlite';
import { AuditLog } from './audit-log.js';

describe(AuditLog.name, () => {
  describe('when refused requests keep coming while it runs', () => {
    it('keeps each log near its retained rows, the newest ones', () => {
      const log = new AuditLog(new DatabaseSync(':memory:'), { retainedRows: 100 });
      for (let i = 0; i < 1_000; i++) {
        log.recordAuthorization({ resource: 'management', principalId: '', scope: '/subscriptions/s', decision: 'denied', operation: `GET /probe/${i}`, reason: 'AuthenticationFailed' });
        log.recordSignIn({ endpoint: 'appservice', outcome: 'failure', reason: 'wrong identity header', correlationId: String(i) });
      }
      const authorizations = log.authorizations({ limit: 10_000 });
      const signIns = log.signIns({ limit: 10_000 });
      // At most a tenth over, between two prunes.
      expect(authorizations.length).toBeGreaterThanOrEqual(100);
      expect(authorizations.length).toBeLessThanOrEqual(110);
      expect(signIns.length).toBeLessThanOrEqual(110);
      expect(authorizations[0]!.operation).toBe('GET /probe/999');
    });
  });
});
