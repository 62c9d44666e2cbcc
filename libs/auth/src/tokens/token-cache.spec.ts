import type { AccessToken } from '@azure/core-auth';
import { jest } from '@jest/globals';
import { RecordingLogger } from '@keyless/testing';
import { wellKnownAudiences } from '../audiences.js';
import { TokenAcquisitionError } from '../errors.js';
import { explainManagedIdentityFailure, type IdentityBinding } from '../identity/identity-credential.js';
import { AuthMetrics } from '../observability/auth.metrics.js';
import { TokenCache } from './token-cache.js';

// The rules below concern what the SDK credential returns over hours (MSAL's swallowed refresh
// failures) or never returns; a scripted credential plays those answers on a fake clock. Everything
// that the local Azure can produce is tested against it in test/identity.

type Answer = { token: string; lifetimeInMs: number } | Error | 'never';

function scriptedBinding(answers: Answer[]): IdentityBinding & { calls: number } {
  const binding = {
    calls: 0,
    mode: 'managed-identity' as const,
    clientId: 'client',
    credential: {
      getToken: (): Promise<AccessToken> => {
        binding.calls += 1;
        const answer = answers.shift();
        if (!answer) return Promise.reject(new Error('script exhausted'));
        if (answer === 'never') return new Promise<AccessToken>(() => undefined);
        if (answer instanceof Error) return Promise.reject(answer);
        return Promise.resolve({ token: answer.token, expiresOnTimestamp: Date.now() + answer.lifetimeInMs });
      },
    },
    endpoint: () => 'http://127.0.0.1:1/msi/token',
    attempts: () => 0,
    explain: (error: unknown, resource: string) => explainManagedIdentityFailure(error, { clientId: 'client', resource, exchange: undefined, endpoint: 'http://127.0.0.1:1/msi/token' }),
    describe: () => 'scripted',
  };
  return binding;
}

const options = { tokenRequestTimeoutInMs: 1_000, refreshRetryDelayInMs: 1_000, maxRefreshRetryDelayInMs: 8_000, expiryMarginInMs: 1_000 };
const audience = wellKnownAudiences.cognitiveServices;

describe(TokenCache.name, () => {
  let cache: TokenCache | undefined;

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
  });
  afterEach(() => {
    cache?.close();
    jest.useRealTimers();
  });

  function cacheWith(binding: IdentityBinding, logger = new RecordingLogger()): TokenCache {
    cache = new TokenCache(binding, options, new AuthMetrics(), logger);
    return cache;
  }

  describe('when a refresh first returns the token already held (MSAL refreshed its cache but returned the old token)', () => {
    it('asks once more and takes the new token, without a failure', async () => {
      const binding = scriptedBinding([
        { token: 'first', lifetimeInMs: 60_000 },
        { token: 'first', lifetimeInMs: 30_000 },
        { token: 'second', lifetimeInMs: 60_000 },
      ]);
      const tokens = cacheWith(binding);
      const slot = tokens.slot(audience);
      expect((await tokens.getToken(slot)).token).toBe('first');
      await jest.advanceTimersByTimeAsync(30_000);
      expect((await tokens.getToken(slot)).token).toBe('second');
      expect(binding.calls).toBe(3);
      expect(tokens.status()[0]).toMatchObject({ consecutiveFailures: 0 });
    });
  });

  describe('when a refresh returns the held token twice (the SDK swallowed its refresh error)', () => {
    it('records TokenNotRenewed and keeps serving the held token', async () => {
      const binding = scriptedBinding([
        { token: 'first', lifetimeInMs: 60_000 },
        { token: 'first', lifetimeInMs: 30_000 },
        { token: 'first', lifetimeInMs: 30_000 },
      ]);
      const logger = new RecordingLogger();
      const tokens = cacheWith(binding, logger);
      const slot = tokens.slot(audience);
      await tokens.getToken(slot);
      await jest.advanceTimersByTimeAsync(30_000);
      expect((await tokens.getToken(slot)).token).toBe('first');
      expect(tokens.status()[0]).toMatchObject({ valid: true, consecutiveFailures: 1, lastFailure: { code: 'TokenNotRenewed', trigger: 'refresh' } });
      expect(logger.messages('warn')[0]).toMatch(/Token refresh for cognitiveServices failed \[TokenNotRenewed\]; still serving the current token/);
    });
  });

  describe('when the credential never answers', () => {
    it('fails the callers with IdentityEndpointTimeout once the request timeout has passed', async () => {
      const tokens = cacheWith(scriptedBinding(['never']));
      const pending = tokens.getToken(tokens.slot(audience));
      const outcome = pending.catch((error: unknown) => error);
      await jest.advanceTimersByTimeAsync(options.tokenRequestTimeoutInMs);
      const error = await outcome;
      expect(error).toBeInstanceOf(TokenAcquisitionError);
      expect(error).toMatchObject({ code: 'IdentityEndpointTimeout' });
      expect((error as Error).message).toContain('gave no token within 1000 ms');
    });
  });

  describe('when the held token expired and the refreshes failed', () => {
    it('passes the failure to the next caller and retries in the background until it succeeds', async () => {
      const refused = new Error('network_error');
      const binding = scriptedBinding([{ token: 'first', lifetimeInMs: 4_000 }, refused, refused, refused, { token: 'second', lifetimeInMs: 60_000 }]);
      const tokens = cacheWith(binding);
      const slot = tokens.slot(audience);
      await tokens.getToken(slot);
      // Refresh at 2 s fails, retries at 2 s (capped before expiry) fail; the token stops being servable at 3 s.
      await jest.advanceTimersByTimeAsync(3_500);
      expect(tokens.status()[0]).toMatchObject({ valid: false });
      const error = await tokens.getToken(slot).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'IdentityEndpointUnreachable' });
      await jest.advanceTimersByTimeAsync(10_000);
      expect(tokens.status()[0]).toMatchObject({ valid: true, consecutiveFailures: 0 });
      expect((await tokens.getToken(slot)).token).toBe('second');
    });
  });

  describe('when an undeclared audience fails before it ever had a token', () => {
    it('leaves the retry to its next caller instead of retrying in the background', async () => {
      const binding = scriptedBinding([new Error('network_error'), { token: 'first', lifetimeInMs: 60_000 }]);
      const tokens = cacheWith(binding);
      const slot = tokens.slot(audience);
      await expect(tokens.getToken(slot)).rejects.toMatchObject({ code: 'IdentityEndpointUnreachable' });
      await jest.advanceTimersByTimeAsync(120_000);
      expect(binding.calls).toBe(1);
      expect((await tokens.getToken(slot)).token).toBe('first');
    });
  });

  describe('when a declared audience fails before it ever had a token', () => {
    it('retries in the background until it holds one', async () => {
      const binding = scriptedBinding([new Error('network_error'), { token: 'first', lifetimeInMs: 60_000 }]);
      const tokens = cacheWith(binding);
      const slot = tokens.slot(audience, true);
      await expect(tokens.getToken(slot)).rejects.toMatchObject({ code: 'IdentityEndpointUnreachable' });
      await jest.advanceTimersByTimeAsync(options.refreshRetryDelayInMs);
      expect(tokens.status()[0]).toMatchObject({ valid: true, consecutiveFailures: 0 });
      expect(binding.calls).toBe(2);
    });
  });

  describe('when it is closed', () => {
    it('schedules nothing more', async () => {
      const binding = scriptedBinding([{ token: 'first', lifetimeInMs: 60_000 }]);
      const tokens = cacheWith(binding);
      await tokens.getToken(tokens.slot(audience));
      tokens.close();
      await jest.advanceTimersByTimeAsync(120_000);
      expect(binding.calls).toBe(1);
      expect(tokens.status()[0]?.nextRefreshAt).toBeUndefined();
    });
  });
});
