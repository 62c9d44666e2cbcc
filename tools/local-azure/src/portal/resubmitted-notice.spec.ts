import { resubmittedNotice } from './portal-pages.js';

// The portal specs reach the locked case through a real receiver; no send path lets a session entity's dead letter
// lack a session id today, so the other reasons' wording is checked here.
describe('the resubmit notice names why the dead letters that stayed stayed', () => {
  it('says nothing of staying when every message went back', () => {
    expect(resubmittedNotice('orders', { resubmitted: 3, kept: 0, lockedKept: 0, withoutSessionIdKept: 0 })).toBe('Resubmitted 3 messages to orders.');
  });

  it('names the one reason that applies', () => {
    expect(resubmittedNotice('orders', { resubmitted: 2, kept: 1, lockedKept: 1, withoutSessionIdKept: 0 })).toBe(
      'Resubmitted 2 messages to orders; 1 message kept in the dead-letter queue (locked by a receiver).',
    );
    expect(resubmittedNotice('sessions', { resubmitted: 0, kept: 2, lockedKept: 0, withoutSessionIdKept: 2 })).toBe(
      'Resubmitted 0 messages to sessions; 2 messages kept in the dead-letter queue (without the session id sessions requires).',
    );
  });

  it('counts each reason when both apply', () => {
    expect(resubmittedNotice('sessions', { resubmitted: 1, kept: 3, lockedKept: 1, withoutSessionIdKept: 2 })).toBe(
      'Resubmitted 1 message to sessions; 3 messages kept in the dead-letter queue (1 locked by a receiver, 2 without the session id sessions requires).',
    );
  });
});
