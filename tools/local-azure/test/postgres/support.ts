// Helpers of the local PostgreSQL's integration tests: tokens of any host's identity, tokens with a chosen
// lifetime signed by the tenant's key, and node-postgres clients that sign in with them.
import { ManagedIdentityCredential } from '@azure/identity';
import { connect } from 'node:net';
import { SignJWT } from 'jose';
import pg from 'pg';
import { TokenIssuer } from '../../src/entra/token-issuer.js';
import type { PostgresStatus } from '../../src/postgres/postgres-data-plane.js';
import { ossrdbmsResource } from '../../src/postgres/postgres-errors.js';
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
export async function cancelRequest(target: pg.Client): Promise<void> {
  const { processID, secretKey } = target as unknown as { processID: number; secretKey: number };
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
