import { Test, type TestingModule } from '@nestjs/testing';
import pg from 'pg';
import type { TLSSocket } from 'node:tls';
import { postgresDataPlane } from '@keyless/local-azure';
import { startTestAzure, TcpGate, type TestAzure } from '@keyless/local-azure/testing';
import { RecordingLogger, waitFor } from '@keyless/testing';
import { AuthModule, AzureClientFactory, AzureIdentityService, type PostgresFactoryOptions, type PostgresPool } from '../../src/index.js';
import { AccessDiagnostics, DatabaseAccessDeniedError, readTokenClaims } from '../../src/diagnostics/index.js';

const tokenLifetimeSeconds = 60;
/** The token a connection signed in with (node-postgres keeps what the password callback returned). */
const sentToken = (client: pg.ClientBase): string => (client as unknown as { password: string }).password;

// create('postgres') against the local Azure's PostgreSQL: TLS verify-full against the local CA, the identity's token
// as the password, 60-second tokens so a refresh and an expiry happen within the test. Host "recommendation".
describe("AzureClientFactory's postgres pool (host \"recommendation\")", () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let module: TestingModule;
  let clients: AzureClientFactory;
  let identity: AzureIdentityService;
  const pools: PostgresPool[] = [];
  const logger = new RecordingLogger();
  const pool = (options: PostgresFactoryOptions = {}): PostgresPool => {
    const created = clients.create('postgres', options);
    pools.push(created);
    return created;
  };

  beforeAll(async () => {
    test = await startTestAzure({ dataPlanes: [postgresDataPlane], config: { tokenLifetimeSeconds } });
    env = test.enterHost('recommendation');
    module = await Test.createTestingModule({
      imports: [
        AuthModule.forRoot({
          clientId: env.AZURE_CLIENT_ID!,
          audiences: ['postgres'],
          resources: { postgres: { host: env.PGHOST!, port: Number(env.PGPORT), database: env.PGDATABASE!, user: env.PGUSER!, sslMode: 'verify-full' } },
          expiryMarginInMs: 1_000,
          logger,
        }),
      ],
    }).compile();
    await module.init();
    clients = module.get(AzureClientFactory);
    identity = module.get(AzureIdentityService);
    // The local engine starts with the first connection: here, not in the first test. On a loaded machine its first
    // start can outlast a connection's 10 s budget; the next connection waits for the same start.
    const first = pool();
    await waitFor('the local engine to start', () => first.query('SELECT 1').then(() => true, () => false), 110_000);
  }, 120_000);
  /** Whether a test stopped the local Azure already (the last one does). */
  let stopped = false;
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await module?.close();
    if (!stopped) await test?.stop();
  });

  describe('when the identity has a database principal', () => {
    it('signs in over verified TLS with its token for the postgres audience as the password', async () => {
      const client = await pool().connect();
      try {
        const stream = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
        expect(stream.encrypted).toBe(true);
        expect(stream.authorized).toBe(true);
        expect(readTokenClaims(sentToken(client))).toMatchObject({ audience: 'https://ossrdbms-aad.database.windows.net', clientId: env.AZURE_CLIENT_ID });
        expect((await client.query<{ answer: number }>('SELECT 41 + 1 AS answer')).rows).toEqual([{ answer: 42 }]);
      } finally {
        client.release();
      }
    });

    it('opens connections after a token refresh with the fresh token, and keeps an older connection working past its token\'s expiry', async () => {
      const connections = pool({ maxConnections: 2 });
      const first = await connections.connect();
      try {
        const firstToken = sentToken(first);
        const firstExpiry = identity.tokenStatus().find((s) => s.audience === 'postgres')!.expiresOn!.getTime();
        // The cache refreshes a 60-second token at half its life.
        await waitFor('the postgres token to be refreshed', () => identity.tokenStatus().find((s) => s.audience === 'postgres')!.expiresOn!.getTime() > firstExpiry, 45_000, 250);
        const second = await connections.connect();
        try {
          expect(sentToken(second)).not.toBe(firstToken);
          await expect(second.query('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
        } finally {
          second.release();
        }
        // The server checks a token at sign-in only: the first connection outlives its token.
        await waitFor("the first connection's token to expire", () => Date.now() > firstExpiry + 1_000, 45_000, 250);
        await expect(first.query('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
      } finally {
        first.release();
      }
    }, 120_000);
  });

  describe('when the server has no principal of that name for the identity', () => {
    it('rejects with DatabaseAccessDeniedError naming the identity, the server and the fix', async () => {
      const denied = await pool({ user: 'id-nobody' }).query('SELECT 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(denied).toBeInstanceOf(DatabaseAccessDeniedError);
      const error = denied as DatabaseAccessDeniedError;
      const objectId = test.azure.directory.findIdentity(env.AZURE_CLIENT_ID!)!.principalId;
      expect(error).toMatchObject({ reason: 'PrincipalMissing', user: 'id-nobody', principal: { clientId: env.AZURE_CLIENT_ID, objectId } });
      expect(error.message).toContain(`Database access denied by PostgreSQL ${env.PGHOST}:${env.PGPORT} (database "${env.PGDATABASE}") to identity ${env.AZURE_CLIENT_ID} (object id ${objectId})`);
      expect(error.fix).toContain(`pgaadauth_create_principal_with_oid('id-nobody', '${objectId}', 'service', true, false)`);
      expect(error.localFix).toMatch(/infra\/access\.json, "databasePrincipals"/);
      expect(error.detail).toBe('28P01: password authentication failed for user "id-nobody"');
    });
  });

  describe('when a token for another audience is sent', () => {
    it('is refused by the server, and the diagnostic names the audience it needs', async () => {
      const token = (await identity.getToken('serviceBus')).token;
      const signIn = { host: env.PGHOST!, port: Number(env.PGPORT), database: env.PGDATABASE!, user: env.PGUSER! };
      const client = new pg.Client({ ...signIn, password: token, ssl: { rejectUnauthorized: true } });
      const refused = await client.connect().then(
        () => undefined,
        (error: unknown) => error,
      );
      await client.end().catch(() => undefined);
      const denied = module.get(AccessDiagnostics).explainDatabase(refused, { ...signIn, token });
      expect(denied).toMatchObject({ reason: 'AudienceInvalid', detail: expect.stringMatching(/valid audience claim/) });
      expect(denied!.fix).toContain('the token sent was for https://servicebus.azure.net/');
    });
  });

  describe('when the connection of a checked-out client drops between two queries (the server restarted)', () => {
    it("logs it instead of ending the process; that client's next query fails, and the pool connects again", async () => {
      const gate = await TcpGate.open({ host: '127.0.0.1', port: Number(env.PGPORT) });
      const gated = pool({ host: '127.0.0.1', port: gate.port });
      const client = await gated.connect();
      let failed: Error | undefined;
      try {
        await client.query('SELECT 1');
        // Nothing runs on the client now: the drop arrives as an 'error' event, which only the pool's client hears.
        await gate.cut();
        await waitFor('the dropped connection to be logged', () => logger.messages('warn').some((line) => line.includes(`127.0.0.1:${gate.port}: a connection in use failed`)));
        failed = await client.query('SELECT 1').then(
          () => undefined,
          (error: unknown) => error as Error,
        );
        expect(failed?.message).toMatch(/not queryable|terminated|ECONNRESET/);
      } finally {
        client.release(failed ?? true);
      }
      await gate.restore();
      try {
        await expect(gated.query('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
      } finally {
        await gate.close();
      }
    });
  });

  describe('when the server cannot be reached', () => {
    it("rejects with node-postgres's own error, not an access diagnostic", async () => {
      const unreachable = await pool({ host: '127.0.0.1', port: 1, connectionTimeoutInMs: 2_000 }).query('SELECT 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(unreachable).toMatchObject({ code: 'ECONNREFUSED' });
      expect(unreachable).not.toBeInstanceOf(DatabaseAccessDeniedError);
    });
  });

  // Last: it stops the local Azure.
  describe('when the server shuts down (57P01 to every connection, as a restart or maintenance does)', () => {
    it('logs the idle connections it closed as routine, not as warnings', async () => {
      const idle = pool();
      await idle.query('SELECT 1');
      expect(idle.idleCount).toBe(1);
      await test.stop();
      stopped = true;
      await waitFor('the closed idle connection to be logged', () => logger.messages('log').some((line) => line.includes(`${env.PGHOST}:${env.PGPORT}: the server closed an idle connection (terminating connection due to administrator command)`)));
      expect(logger.messages('warn').filter((line) => line.includes(`${env.PGHOST}:${env.PGPORT}:`))).toEqual([]);
    });
  });
});
