import { AccessDeniedError } from '@keyless/auth';
import { DeadLetterError } from './errors.js';
import { describe as describeError } from './error-description.js';
import { backoff, settle } from './settlement-policy.js';

// One test per rule of the policy (see the docblock of settlement-policy.ts).
describe('settle', () => {
  const half = () => 0.5; // no jitter: the midpoint of the spread

  it('rule 1: completes a handled message', () => {
    expect(settle({ kind: 'handled' }, 0)).toEqual({ action: 'complete' });
  });

  it.each(['UndecodableBody', 'SchemaValidationFailed', 'NoHandler', 'MissingReplyTo', 'ReplyToNotAllowed'] as const)(
    'rule 2: dead-letters a message that cannot be handled (%s) at once, even on its first delivery',
    (reason) => {
      expect(settle({ kind: 'unhandleable', reason, description: 'why' }, 0)).toEqual({ action: 'dead-letter', reason, description: 'why' });
    },
  );

  it('rule 3: dead-letters at once when the handler throws DeadLetterError, with its reason', () => {
    const error = new DeadLetterError('UnknownProduct', 'product p-1 does not exist');
    expect(settle({ kind: 'failed', error, isRequest: false }, 0)).toEqual({ action: 'dead-letter', reason: 'UnknownProduct', description: 'product p-1 does not exist' });
    expect(settle({ kind: 'failed', error, isRequest: true }, 0)).toMatchObject({ action: 'dead-letter' });
  });

  it('rule 4: completes a request whose handler failed (the caller got an error reply)', () => {
    expect(settle({ kind: 'failed', error: new Error('boom'), isRequest: true }, 0)).toEqual({ action: 'complete' });
  });

  describe('rule 5: a failed event handler', () => {
    it('is retried with exponential backoff while attempts remain', () => {
      const failed = { kind: 'failed' as const, error: new Error('OpenAI 429'), isRequest: false };
      expect(settle(failed, 0, { initialBackoffInMs: 100 }, half)).toEqual({ action: 'retry', delayInMs: 100 });
      expect(settle(failed, 1, { initialBackoffInMs: 100 }, half)).toEqual({ action: 'retry', delayInMs: 200 });
      expect(settle(failed, 2, { initialBackoffInMs: 100 }, half)).toEqual({ action: 'retry', delayInMs: 400 });
    });

    it('is dead-lettered with the last error once maxAttempts deliveries failed', () => {
      const failed = { kind: 'failed' as const, error: new TypeError('cannot read x'), isRequest: false };
      expect(settle(failed, 2, { maxAttempts: 3 })).toEqual({
        action: 'dead-letter',
        reason: 'MaxAttemptsExceeded',
        description: 'failed 3 times; last error: TypeError: cannot read x',
      });
    });
  });

  it('rule 6: retries a handled request whose reply could not be sent, then dead-letters it with the send error', () => {
    const notSent = { kind: 'reply-not-sent' as const, error: new Error('connection lost') };
    expect(settle(notSent, 0, { initialBackoffInMs: 100 }, half)).toEqual({ action: 'retry', delayInMs: 100 });
    expect(settle(notSent, 4)).toEqual({ action: 'dead-letter', reason: 'MaxAttemptsExceeded', description: 'failed 5 times; last error: Error: connection lost' });
  });
});

describe('backoff', () => {
  it('caps the delay and spreads it by the jitter', () => {
    expect(backoff(20, { initialBackoffInMs: 100, maxBackoffInMs: 1000 }, () => 0.5)).toBe(1000);
    expect(backoff(1, { initialBackoffInMs: 1000, jitter: 0.2 }, () => 0)).toBe(800);
    expect(backoff(1, { initialBackoffInMs: 1000, jitter: 0.2 }, () => 1)).toBe(1200);
  });
});

describe('describe', () => {
  it('names the last error of an AggregateError (the SDK\'s "every retry failed") and how many there were', () => {
    const error = new AggregateError([new Error('first'), Object.assign(new Error('Send claim required'), { name: 'ServiceBusError' })]);
    expect(describeError(error)).toBe('ServiceBusError: Send claim required (2 attempts)');
  });

  it('bounds the length of what it returns', () => {
    expect(describeError(new Error('x'.repeat(5000)))).toHaveLength(2000);
  });

  it('keeps a role refusal whole: both fix commands reach the log', () => {
    const objectId = '4b9d7b1e-3f7c-4c58-9a35-0d2f4f1e6a77';
    const scope = '/subscriptions/bc00a3c9-5f31-4a71-8b54-fe029f2d7900/resourceGroups/rg-keyless-local/providers/Microsoft.ServiceBus/namespaces/sb-keyless-local/queues/recommendation-requests';
    const assignment = `--assignee-object-id ${objectId} --assignee-principal-type ServicePrincipal --role "Azure Service Bus Data Receiver" --scope ${scope}`;
    const denied = new AccessDeniedError({
      principal: { clientId: '6e2c1d13-0856-48c6-bf75-71c17f27c897', objectId, type: 'ServicePrincipal' },
      resource: 'serviceBus',
      dataAction: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
      role: { name: 'Azure Service Bus Data Receiver', id: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' },
      scope,
      fixCommand: `az role assignment create ${assignment}`,
      localFixCommand: `npm run local-azure -- role assignment create ${assignment}`,
      detail: `Unauthorized access. 'Listen' claim(s) are required to perform this operation. Resource: 'sb://localhost:5671/recommendation-requests'. TrackingId:${objectId}_G1, SystemTracker:gateway, Timestamp:2026-12-07T03:00:00`,
    });
    const described = describeError(denied);
    expect(described).toContain(denied.fixCommand);
    expect(described).toContain(denied.localFixCommand);
  });
});
