import { jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { repoRoot } from '../../src/config/local-azure-config.js';
import { createPostgresDataPlane, postgresDataPlane } from '../../src/postgres/postgres-data-plane.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { slowClient } from '@keyless/testing';
import { client, hostToken, identityPassword, refusal, tokenWithLifetime, tokenWithoutOid } from './support.js';

const audience = 'https://ossrdbms-aad.database.windows.net';

// Sign-ins cost a token, a TLS handshake and a turn of the shared session each; the machine is shared.
jest.setTimeout(60_000);

describe('Local Azure Database for PostgreSQL: Microsoft Entra sign-in with node-postgres', () => {
  let test: TestAzure;
  let env: Record<string, string>;
  let accessDir: string;
  let accessFile: string;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    // A copy of the real access file, so that one test can change the principal and re-apply it.
    accessDir = mkdtempSync(join(tmpdir(), 'pg-access-'));
    accessFile = join(accessDir, 'access.json');
    writeFileSync(accessFile, readFileSync(join(repoRoot, 'infra/access.json')));
    test = await startTestAzure({ dataPlanes: [postgresDataPlane], config: { accessFile }, log: (line) => consoleLines.push(line) });
    env = test.enterHost('recommendation');
    await waitForEngine();
  }, 300_000);
  afterAll(async () => {
    await test.stop();
    rmSync(accessDir, { recursive: true, force: true });
  });

  /** The engine starts in the background (initdb on first use): the first login waits for it. */
  const waitForEngine = async (): Promise<void> => {
    const c = client(identityPassword());
    await c.connect();
    await c.end();
  };
  const postgresSignIns = () => test.azure.auditLog.signIns({ limit: 1000 }).filter((record) => record.endpoint === 'postgres');

  it("writes libpq's variables into the host env files: the host's identity as user, verify-full, no password", () => {
    expect(env).toMatchObject({
      PGHOST: 'localhost',
      PGPORT: expect.stringMatching(/^\d+$/),
      PGDATABASE: 'keyless',
      PGUSER: 'id-keyless',
      PGSSLMODE: 'verify-full',
      POSTGRES_SERVER_RESOURCE_ID: expect.stringMatching(/\/providers\/Microsoft\.DBforPostgreSQL\/flexibleServers\/psql-keyless-local$/),
    });
    expect(test.azure.hostEnv('storefront').PGUSER).toBe('id-storefront');
    for (const host of ['gateway', 'recommendation', 'vision', 'storefront']) expect(Object.keys(test.azure.hostEnv(host))).not.toContain('PGPASSWORD');
  });

  it('joins a large message once it has arrived, not at every read', async () => {
    const c = client(identityPassword());
    await c.connect();
    const text = 'x'.repeat(8 * 1024 * 1024);
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      // 8 MiB reach the front end in some 500 TLS records: joined at every read, that was some 500 joins and 2 GiB copied.
      const result = await c.query<{ n: number }>('SELECT length($1::text) AS n', [text]);
      expect(result.rows[0]!.n).toBe(text.length);
      expect(concat.mock.calls.length).toBeLessThan(50);
    } finally {
      concat.mockRestore();
      await c.end();
    }
  });

  it('refuses a password message longer than PostgreSQL reads before sign-in as a protocol violation, before it has arrived', async () => {
    // 1 MB: the front end would have buffered up to 64 MiB from anyone who can connect, on every connection.
    const error = await refusal('x'.repeat(1_000_000));
    expect({ code: error.code, message: error.message }).toEqual({ code: '08P01', message: 'invalid message length 1000005' });
  });

  describe('when the password is a token of the principal named as user', () => {
    it('signs in over verified TLS as the role named after the identity, in the database keyless', async () => {
      const c = client(identityPassword());
      await c.connect();
      try {
        const { rows } = await c.query('SELECT current_user AS "user", session_user AS session, current_database() AS database');
        expect(rows[0]).toEqual({ user: 'id-keyless', session: 'id-keyless', database: 'keyless' });
        expect((c as unknown as { connection: { stream: { encrypted?: boolean; authorized?: boolean } } }).connection.stream).toMatchObject({ encrypted: true, authorized: true });
      } finally {
        await c.end();
      }
      const signIn = postgresSignIns()[0]!;
      expect(signIn).toMatchObject({ outcome: 'success', user: 'id-keyless', database: 'keyless', identity: 'id-keyless', resource: audience });
      const decision = test.azure.auditLog.authorizations({ limit: 1 })[0]!;
      expect(decision).toMatchObject({ resource: 'postgres', identity: 'id-keyless', dataAction: 'login', decision: 'allowed', role: 'database principal "id-keyless" (administrator)' });
      expect(decision.scope).toMatch(/flexibleServers\/psql-keyless-local\/databases\/keyless$/);
    });

    it('lets the administrator principal create the vector extension and tables, not act as a superuser', async () => {
      const c = client(identityPassword());
      await c.connect();
      try {
        await c.query('CREATE EXTENSION IF NOT EXISTS vector');
        await c.query('CREATE TABLE login_probe (id int PRIMARY KEY, embedding vector(3))');
        const { rows } = await c.query("SELECT rolsuper, pg_has_role(current_user, 'azure_pg_admin', 'MEMBER') AS admin FROM pg_roles WHERE rolname = current_user");
        expect(rows[0]).toEqual({ rolsuper: false, admin: true });
        await expect(c.query('ALTER SYSTEM SET work_mem = 1024')).rejects.toMatchObject({ code: '42501' });
      } finally {
        await c.end();
      }
    });
  });

  describe('when the login is refused', () => {
    it.each([
      ['a token for another audience', 'wrong-audience', `The access token does not have a valid audience claim. Please acquire a new token for the resource "${audience}".`, '28000'],
      ['an expired token', 'expired', 'The access token has expired. Acquire a new token and try again.', '28000'],
      ['a token without oid', 'no-oid', "The access token doesn't have a valid oid claim. Acquire a new token and try again", '28000'],
      ['a password instead of a token (password authentication is disabled)', 'password', 'password authentication failed for user "id-keyless"', '28P01'],
      ['a token wrapped in extra characters', 'wrapped', 'The access token has invalid format. Please ensure the token is passed exactly as returned by the authentication endpoint and retry.', '28000'],
      ['another identity\'s token for id-keyless', 'other-identity', 'password authentication failed for user "id-keyless"', '28P01'],
    ])("refuses %s with Azure's error", async (_case, kind, message, code) => {
      const password = {
        'wrong-audience': () => hostToken(test, 'recommendation', 'https://cognitiveservices.azure.com'),
        expired: () => tokenWithLifetime(test, 'id-keyless', -400),
        'no-oid': () => tokenWithoutOid(test, 'id-keyless'),
        password: async () => 'not-a-token-just-a-password',
        wrapped: async () => `{${await hostToken(test, 'recommendation')}}`,
        'other-identity': () => hostToken(test, 'storefront'),
      }[kind]!;
      const error = await refusal(await password());
      expect(error).toBeInstanceOf(pg.DatabaseError);
      expect(error).toMatchObject({ severity: 'FATAL', code, message });
      expect(postgresSignIns()[0]).toMatchObject({ outcome: 'failure', user: 'id-keyless', reason: expect.any(String) });
      expect(consoleLines.at(-1)).toMatch(/^postgres: login refused for user "id-keyless" \(database "keyless"\) from 127\.0\.0\.1:\d+: /);
    });

    it('refuses a user that is no database principal, even with that identity\'s own token, and logs the denial', async () => {
      const error = await refusal(await hostToken(test, 'storefront'), { user: 'id-storefront' });
      expect(error).toMatchObject({ code: '28P01', message: 'password authentication failed for user "id-storefront"' });
      expect(postgresSignIns()[0]).toMatchObject({ outcome: 'failure', user: 'id-storefront', identity: 'id-storefront', reason: expect.stringContaining('no database principal is named "id-storefront"') });
      expect(test.azure.auditLog.authorizations({ limit: 1 })[0]).toMatchObject({ resource: 'postgres', identity: 'id-storefront', dataAction: 'login', decision: 'denied' });
      expect(consoleLines.at(-1)).toContain('Fix: declare the identity under databasePrincipals in infra/access.json');
    });

    it('refuses an unknown user name with the stock PostgreSQL text', async () => {
      expect(await refusal(identityPassword(), { user: 'nobody' })).toMatchObject({ code: '28P01', message: 'password authentication failed for user "nobody"' });
    });

    it('refuses a database other than the served one after signing in, as PostgreSQL does', async () => {
      expect(await refusal(identityPassword(), { database: 'postgres' })).toMatchObject({ code: '3D000', message: 'database "postgres" does not exist' });
    });

    it('refuses a start-up setting PostgreSQL does not know, after authentication, as PostgreSQL does', async () => {
      expect(await refusal(identityPassword(), { options: '-c not_a_setting=1' })).toMatchObject({ severity: 'FATAL', code: '42704', message: 'unrecognized configuration parameter "not_a_setting"' });
    });

    it("refuses a plaintext start-up with PostgreSQL's pg_hba text, before asking for a password", async () => {
      let asked = false;
      const error = await refusal(
        async () => {
          asked = true;
          return 'unused';
        },
        { ssl: false },
      );
      expect(error).toMatchObject({ severity: 'FATAL', code: '28000', message: 'no pg_hba.conf entry for host "127.0.0.1", user "id-keyless", database "keyless", no encryption' });
      expect(asked).toBe(false);
      expect(postgresSignIns()[0]).toMatchObject({ outcome: 'failure', reason: expect.stringContaining('TLS is required') });
    });
  });

  describe('the start-up negotiation', () => {
    const exchange = (socket: Socket, bytes: Buffer): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        socket.once('data', resolve);
        socket.once('error', reject);
        socket.write(bytes);
      });
    const request = (code: number): Buffer => {
      const packet = Buffer.alloc(8);
      packet.writeInt32BE(8, 0);
      packet.writeInt32BE(code, 4);
      return packet;
    };

    it("answers GSSENCRequest with 'N' and then SSLRequest with 'S' on the same connection", async () => {
      const socket = connect(Number(env.PGPORT), '127.0.0.1');
      try {
        expect((await exchange(socket, request(80_877_104))).toString()).toBe('N');
        expect((await exchange(socket, request(80_877_103))).toString()).toBe('S');
      } finally {
        socket.destroy();
      }
    });

    it('closes the connection of a CancelRequest that names no connection, without an answer', async () => {
      const socket = connect(Number(env.PGPORT), '127.0.0.1');
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(80_877_102, 4);
      packet.writeInt32BE(12345, 8);
      packet.writeInt32BE(678, 12);
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.write(packet);
      });
      expect(Buffer.concat(received).length).toBe(0);
    });

    it('refuses a malformed start-up packet with a protocol violation', async () => {
      const socket = connect(Number(env.PGPORT), '127.0.0.1');
      const packet = Buffer.alloc(8);
      packet.writeInt32BE(1_000_000, 0);
      const answer = await exchange(socket, packet);
      socket.destroy();
      expect(answer[0]).toBe(0x45); // 'E'
      expect(answer.toString('utf8')).toContain('invalid length of startup packet');
    });
  });

  describe('when the token expires during a connection', () => {
    it('keeps the connection working: as in Azure, the token is checked only at login', async () => {
      // Azure accepts tokens up to five minutes past exp; this one is four minutes and 58 seconds past it.
      const token = await tokenWithLifetime(test, 'id-keyless', -298);
      const c = client(token);
      await c.connect();
      try {
        // Wait until the same token no longer signs in (it crossed the clock-skew allowance)...
        const deadline = Date.now() + 60_000;
        let refused: pg.DatabaseError | undefined;
        while (!refused && Date.now() < deadline) {
          refused = await refusal(token).catch(() => undefined);
        }
        expect(refused).toMatchObject({ message: 'The access token has expired. Acquire a new token and try again.' });
        // ...while the connection made with it goes on.
        expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
    }, 120_000);
  });

  describe('when the access file changes the principal and is re-applied', () => {
    it('signs the identity in as a plain login role that cannot create tables, then as administrator again', async () => {
      const original = readFileSync(accessFile, 'utf8');
      const access = JSON.parse(original) as { databasePrincipals: { administrator: boolean }[] };
      access.databasePrincipals[0]!.administrator = false;
      writeFileSync(accessFile, JSON.stringify(access));
      test.azure.applyAccessFile();
      try {
        const c = client(identityPassword());
        await c.connect();
        try {
          await expect(c.query('CREATE TABLE plain_login_probe (id int)')).rejects.toMatchObject({ code: '42501', message: 'permission denied for schema public' });
        } finally {
          await c.end();
        }
      } finally {
        writeFileSync(accessFile, original);
        test.azure.applyAccessFile();
      }
      const c = client(identityPassword());
      await c.connect();
      try {
        await c.query('CREATE TABLE admin_again_probe (id int)');
      } finally {
        await c.end();
      }
    });
  });
});

describe('Local Azure Database for PostgreSQL, given clients that never sign in', () => {
  let test: TestAzure;
  let origin: string;

  beforeAll(async () => {
    // PostgreSQL's authentication_timeout (60 s by default), shortened.
    test = await startTestAzure({ dataPlanes: [createPostgresDataPlane({ authenticationTimeoutInMs: 1000 })] });
    const env = test.azure.hostEnv('recommendation');
    origin = `http://${env.PGHOST === 'localhost' ? '127.0.0.1' : env.PGHOST}:${env.PGPORT}`;
  });
  afterAll(() => test.stop());

  it('drops a connection that sends no start-up message within the authentication timeout', async () => {
    const outcome = await slowClient({ origin, deadlineInMs: 15_000 });
    expect(outcome.received).toBe('');
  });

  it('drops a connection that trickles its start-up message', async () => {
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(100, 0); // every byte below 0x80: the client writes its head as text
    startup.writeInt32BE(196_608, 4); // protocol 3.0
    const outcome = await slowClient({ origin, head: startup.toString('latin1'), trickle: 'u'.repeat(100), deadlineInMs: 15_000 });
    expect(outcome.received).toBe('');
  });
});
