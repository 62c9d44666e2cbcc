// Helpers of the local PostgreSQL's integration tests: tokens of any host's identity, tokens with a chosen
// lifetime signed by the tenant's key, and node-postgres clients that sign in with them.
import { ManagedIdentityCredential } from '@azure/identity';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { SignJWT } from 'jose';
import pg from 'pg';
import { TokenIssuer } from '../../src/entra/token-issuer.js';
import type { PostgresStatus } from '../../src/postgres/postgres-data-plane.js';
import { ossrdbmsResource } from '../../src/postgres/postgres-errors.js';
import { frontend, PacketReader, startupCodes } from '../../src/postgres/wire-protocol.js';
import type { TestAzure } from '../../src/testing/index.js';

export const ossrdbmsScope = `${ossrdbmsResource}/.default`;

/**
 * A token from `host`'s managed-identity endpoint (App Service shape) for `resource`: how a process on another
 * host gets its identity's token (`@azure/identity` serves one host per process).
 */
export async function hostToken(test: TestAzure, host: string, resource = ossrdbmsResource): Promise<string> {
  const env = test.azure.hostEnv(host);
  const url = `${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}&client_id=${env.AZURE_CLIENT_ID}`;
  const response = await fetch(url, { headers: { 'X-IDENTITY-HEADER': env.IDENTITY_HEADER! } });
  if (!response.ok) throw new Error(`token request failed: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

/** A token of `identity` issued by the tenant's own issuer, with a lifetime in seconds (negative: already expired). */
export async function tokenWithLifetime(test: TestAzure, identity: string, lifetimeSeconds: number): Promise<string> {
  const issuer = new TokenIssuer(test.azure.directory, test.azure.keys, () => lifetimeSeconds);
  return (await issuer.issue(test.azure.directory.userAssignedIdentity(identity)!, ossrdbmsResource)).accessToken;
}

/** A token signed with the tenant's key that lacks the `oid` claim. */
export async function tokenWithoutOid(test: TestAzure, identity: string): Promise<string> {
  const { kid, privateKey } = test.azure.keys.current;
  const tenant = test.azure.directory.tenantId;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ appid: test.azure.directory.userAssignedIdentity(identity)!.clientId, tid: tenant, ver: '1.0' })
    .setProtectedHeader({ typ: 'JWT', alg: 'RS256', kid })
    .setAudience(ossrdbmsResource)
    .setIssuer(`https://sts.windows.net/${tenant}/`)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
}

/** A password callback with this process's identity (the env file's AZURE_CLIENT_ID), as services use. */
export function identityPassword(): () => Promise<string> {
  const credential = new ManagedIdentityCredential({ clientId: process.env.AZURE_CLIENT_ID! });
  return async () => (await credential.getToken(ossrdbmsScope)).token;
}

/** A client with PG* from the env file and the given password (a token, or a callback). */
export function client(password: string | (() => Promise<string>), config: pg.ClientConfig = {}): pg.Client {
  return new pg.Client({ password, connectionTimeoutMillis: 120_000, ...config });
}

/** Connects, expecting a refusal; returns the server's error. */
export async function refusal(password: string | (() => Promise<string>), config: pg.ClientConfig = {}): Promise<pg.DatabaseError> {
  const c = client(password, config);
  try {
    await c.connect();
  } catch (error) {
    return error as pg.DatabaseError;
  } finally {
    await c.end().catch(() => undefined);
  }
  throw new Error('the login was not refused');
}

/** Resolves when `promise` settles, reporting whether it did before `other` did (no timing involved). */
export async function settledFirst(promise: Promise<unknown>, other: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await other;
  return done;
}

/** The local PostgreSQL as the management API reports it (`GET /postgres`, as the operator). */
export function postgresStatus(test: TestAzure): Promise<PostgresStatus> {
  return test.admin().call<PostgresStatus>('GET', '/postgres');
}

/** Polls `condition` on the admin API's report until it holds (deadline 30 s). */
export async function waitForStatus(test: TestAzure, condition: (status: PostgresStatus) => boolean): Promise<PostgresStatus> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await postgresStatus(test);
    if (condition(status)) return status;
    if (Date.now() > deadline) throw new Error(`the local PostgreSQL did not reach the expected state: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends a CancelRequest for `target` on a connection of its own, as libpq and node-postgres do. */
export async function cancelRequest(target: pg.Client | RawPostgresClient): Promise<void> {
  const { processID, secretKey } = target instanceof RawPostgresClient ? target.backendKey : (target as unknown as { processID: number; secretKey: number });
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80_877_102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  const socket = connect(Number(process.env.PGPORT), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve());
    socket.write(packet);
  });
}

/**
 * A connection signed in by hand (SSLRequest, TLS, start-up, the token as password), for tests that write protocol
 * messages themselves and choose when to read the answers, which node-postgres does not let them do.
 */
export class RawPostgresClient {
  private readonly reader = new PacketReader(2 ** 30);
  private waiter: (() => void) | undefined;
  private ended = false;
  /** The process id and secret key of its BackendKeyData (what a CancelRequest names). */
  readonly backendKey = { processID: 0, secretKey: 0 };

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.wake();
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Signs in to the local PostgreSQL named by PG* (the env file) with `password`; resolves at the first ReadyForQuery. */
  static async signIn(password: string): Promise<RawPostgresClient> {
    const plain = connect(Number(process.env.PGPORT), '127.0.0.1');
    await once(plain, 'connect');
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(startupCodes.sslRequest, 4);
    plain.write(sslRequest);
    const [answer] = (await once(plain, 'data')) as [Buffer];
    if (answer.toString('latin1') !== 'S') throw new Error(`the server refused TLS: ${answer.toString('latin1')}`);
    const socket = connectTls({ socket: plain, servername: process.env.PGHOST! });
    await once(socket, 'secureConnect');
    const client = new RawPostgresClient(socket);
    socket.write(frontend.startup({ user: process.env.PGUSER!, database: process.env.PGDATABASE! }));
    for (;;) {
      const message = await client.next();
      if (message[0] === 0x52 /* R */ && message.readInt32BE(5) === 3) socket.write(passwordMessage(password));
      if (message[0] === 0x4b /* K */) Object.assign(client.backendKey, { processID: message.readInt32BE(5), secretKey: message.readInt32BE(9) });
      if (message[0] === 0x45 /* E */) throw new Error(`the sign-in was refused: ${message.subarray(5).toString('utf8')}`);
      if (message[0] === 0x5a /* Z */) return client;
    }
  }

  /** The next backend message (type byte and length included); rejects if the connection closes first. */
  async next(): Promise<Buffer> {
    for (;;) {
      const message = this.reader.nextMessage();
      if (message) return message;
      if (this.ended) throw new Error('the server closed the connection');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /**
   * Writes `bytes`, waiting while the socket's own buffer is full (the client side of backpressure); resolves false
   * if the connection closes first.
   */
  async write(bytes: Buffer): Promise<boolean> {
    if (this.ended) return false;
    if (this.socket.write(bytes)) return true;
    return new Promise<boolean>((resolve) => {
      const settle = (drained: boolean) => (): void => {
        this.socket.off('drain', onDrain).off('close', onClose);
        resolve(drained);
      };
      const [onDrain, onClose] = [settle(true), settle(false)];
      this.socket.on('drain', onDrain).on('close', onClose);
    });
  }

  /** Writes `count` messages made by `make`, in batches, as fast as the connection takes them; stops if it closes. */
  async writeMany(count: number, make: (n: number) => Buffer): Promise<void> {
    const batch = 500;
    for (let first = 0; first < count; first += batch) {
      const bytes = Buffer.concat(Array.from({ length: Math.min(batch, count - first) }, (_, i) => make(first + i)));
      if (!(await this.write(bytes))) return;
    }
  }

  /** Stops (true) or resumes (false) reading from the socket: a client that does not read its answers. */
  holdReading(hold: boolean): void {
    if (hold) this.socket.pause();
    else this.socket.resume();
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/** A PasswordMessage (`p`): the cleartext password the server asked for. */
function passwordMessage(password: string): Buffer {
  const body = Buffer.from(`${password}\0`, 'utf8');
  const header = Buffer.alloc(5);
  header.write('p', 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** One query answered with its number and 10 KB of text: a simple Query. */
export const simpleQuery = (n: number): Buffer => frontend.query(`SELECT ${n} AS n, repeat('x', 10000) AS filler`);

/** Reads answers until `readyForQuery` ReadyForQuery messages came; returns the first column of every DataRow, in order. */
export async function readAnswers(raw: RawPostgresClient, readyForQuery: number): Promise<number[]> {
  const numbers: number[] = [];
  for (let ready = 0; ready < readyForQuery; ) {
    const answer = await raw.next();
    const type = String.fromCharCode(answer[0]!);
    if (type === 'E') throw new Error(`the server answered an error: ${answer.subarray(5).toString('utf8')}`);
    if (type === 'D') numbers.push(Number(answer.subarray(11, 11 + answer.readInt32BE(7)).toString('utf8')));
    if (type === 'Z') ready++;
  }
  return numbers;
}
