import { randomBytes } from 'node:crypto';
import { npmAsTyped } from '@keyless/testing';
import { authDefaults, resolveAuthOptions } from './auth-options.js';
import { AuthConfigurationError } from './errors.js';

const clientId = '6b1f8a52-3c9d-4e07-a1b2-9f4e5d6c7b80';

function errorOf(run: () => unknown): AuthConfigurationError {
  try {
    run();
  } catch (error) {
    if (error instanceof AuthConfigurationError) return error;
    throw error;
  }
  throw new Error('expected an AuthConfigurationError');
}

describe(resolveAuthOptions.name, () => {
  describe('when only the client id is given', () => {
    it('applies every default', () => {
      expect(resolveAuthOptions({ clientId })).toEqual({
        mode: 'managed-identity',
        clientId,
        audiences: [],
        resources: {},
        tokenRequestTimeoutInMs: authDefaults.tokenRequestTimeoutInMs,
        maxRetries: authDefaults.maxRetries,
        startupTimeoutInMs: authDefaults.startupTimeoutInMs,
        startupAccessCheck: true,
        refreshRetryDelayInMs: authDefaults.refreshRetryDelayInMs,
        maxRefreshRetryDelayInMs: authDefaults.maxRefreshRetryDelayInMs,
        expiryMarginInMs: authDefaults.expiryMarginInMs,
      });
    });

    it('normalises the client id to lower case (the identity endpoint compares it so)', () => {
      expect(resolveAuthOptions({ clientId: clientId.toUpperCase() }).clientId).toBe(clientId);
    });
  });

  describe('when the client id is missing in managed-identity mode', () => {
    it.each([undefined, '', '   '])('throws ClientIdMissing for %p, saying where to find it', (value) => {
      const error = errorOf(() => resolveAuthOptions({ ...(value !== undefined ? { clientId: value } : {}) }));
      expect(error.code).toBe('ClientIdMissing');
      expect(error.message).toContain('Set AZURE_CLIENT_ID to the client id of the user-assigned identity');
    });

    it('names the local Azure home (localAzureHome) in the local command, which runs on that home as typed', () => {
      const home = "/tmp/keyless copy/it's";
      const command = /locally: (.+)\)\.$/m.exec(errorOf(() => resolveAuthOptions({ localAzureHome: home })).message)?.[1];
      expect(npmAsTyped(command!, ['LOCAL_AZURE_HOME'])).toEqual({ args: ['run', 'local-azure', '--', 'identity', 'list'], env: { LOCAL_AZURE_HOME: home } });
    });
  });

  describe('when the client id is missing in a developer mode', () => {
    it('accepts it: the developer\'s login is the principal', () => {
      expect(resolveAuthOptions({ mode: 'azure-cli' })).toMatchObject({ mode: 'azure-cli' });
    });
  });

  describe('when the client id is not a GUID', () => {
    it.each([
      ['id-keyless', 'that looks like the identity\'s name'],
      ['/subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-keyless', 'that is the identity\'s ARM resource id'],
      ['6b1f8a52-3c9d-4e07-a1b2', 'it is not a GUID'],
    ])('throws ClientIdMalformed for "%s" (%s)', (value, hint) => {
      const error = errorOf(() => resolveAuthOptions({ clientId: value }));
      expect(error.code).toBe('ClientIdMalformed');
      expect(error.message).toContain(`"${value}" is not a client id (${hint})`);
    });
  });

  describe('when an audience is unknown', () => {
    it('throws AudienceUnknown naming its position', () => {
      const error = errorOf(() => resolveAuthOptions({ clientId, audiences: ['serviceBus', 'cognitive'] }));
      expect(error.code).toBe('AudienceUnknown');
      expect(error.problems).toEqual([expect.stringMatching(/^audiences\.1: Unknown audience "cognitive"/)]);
    });
  });

  describe('when the same audience is declared twice in different spellings', () => {
    it('keeps it once', () => {
      expect(resolveAuthOptions({ clientId, audiences: ['serviceBus', 'https://servicebus.azure.net//.default'] }).audiences).toHaveLength(1);
    });
  });

  describe('when several options are wrong', () => {
    it('reports every problem at once with OptionsInvalid', () => {
      const error = errorOf(() =>
        resolveAuthOptions({
          clientId: 'id-keyless',
          audiences: ['cognitive'],
          tokenRequestTimeoutInMs: 5,
          resources: { openAi: { endpoint: 'http://oai.example' } },
        }),
      );
      expect(error.code).toBe('OptionsInvalid');
      expect(error.problems).toHaveLength(4);
      expect(error.message).toMatch(/tokenRequestTimeoutInMs/);
      expect(error.message).toMatch(/resources\.openAi\.endpoint: must be an https URL/);
      expect(error.message).toMatch(/clientId: "id-keyless" is not a client id/);
      expect(error.message).toMatch(/audiences\.0: Unknown audience/);
    });
  });

  describe('when a resource option holds a connection string', () => {
    it('refuses it as a secret', () => {
      const error = errorOf(() =>
        resolveAuthOptions({ clientId, resources: { serviceBus: { fullyQualifiedNamespace: `Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=${'k'.repeat(8)}` } } }),
      );
      expect(error.message).toMatch(/resources\.serviceBus\.fullyQualifiedNamespace: holds a secret \(SharedAccessKey=\)/);
    });
  });

  describe('when the PostgreSQL settings are given', () => {
    const postgres = { host: 'psql-keyless.postgres.database.azure.com', port: 5432, database: 'keyless', user: 'id-keyless', sslMode: 'verify-full' as const };

    it('accepts libpq\'s settings without a password', () => {
      expect(resolveAuthOptions({ clientId, resources: { postgres } }).resources.postgres).toEqual(postgres);
    });

    it.each(['require', 'verify-ca', 'disable', 'prefer'])('refuses PGSSLMODE=%s: a token goes only to a verified server', (sslMode) => {
      const error = errorOf(() => resolveAuthOptions({ clientId, resources: { postgres: { ...postgres, sslMode: sslMode as 'verify-full' } } }));
      expect(error.message).toMatch(/resources\.postgres\.sslMode: must be verify-full: the password is an access token/);
    });

    it('refuses a database URL with a password as the host', () => {
      const url = `postgres://id-keyless:${randomBytes(12).toString('hex')}@psql-keyless.postgres.database.azure.com/keyless`;
      const error = errorOf(() => resolveAuthOptions({ clientId, resources: { postgres: { ...postgres, host: url } } }));
      expect(error.message).toMatch(/resources\.postgres\.host: holds a secret \(a password in a postgres:\/\/ URL\)/);
      expect(error.message).not.toContain(url);
    });

    it('refuses a password option', () => {
      const error = errorOf(() => resolveAuthOptions({ clientId, resources: { postgres: { ...postgres, ...({ password: 'x' } as object) } } }));
      expect(error.message).toMatch(/resources\.postgres.*password/);
    });
  });

  describe('when an option the library does not know is given', () => {
    it('refuses it (a typo must not silently fall back to a default)', () => {
      const error = errorOf(() => resolveAuthOptions({ clientId, ...({ connectionString: 'x' } as object) }));
      expect(error.message).toMatch(/connectionString/);
    });
  });
});
