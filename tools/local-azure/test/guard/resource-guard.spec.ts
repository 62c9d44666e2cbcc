import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { createHmac } from 'node:crypto';
import { dataActions, findRole } from '../../src/index.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';

const cognitive = 'https://cognitiveservices.azure.com';

describe('ResourceGuard', () => {
  let test: TestAzure;
  let valid: string;
  let claims: JWTPayload;

  /** Gets a real token for the shared identity from the gateway host's endpoint. */
  async function tokenFor(resource: string): Promise<string> {
    const env = test.azure.hostEnv('gateway');
    const url = `${env.IDENTITY_ENDPOINT}?${new URLSearchParams({ 'api-version': '2019-08-01', resource, client_id: env.AZURE_CLIENT_ID! })}`;
    const body = (await (await fetch(url, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } })).json()) as { access_token: string };
    return body.access_token;
  }

  const base64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = (): Record<string, unknown> => JSON.parse(Buffer.from(valid.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;

  /** Signs `claims` (the valid token's, with overrides) with the tenant's current key. */
  function resign(overrides: JWTPayload): Promise<string> {
    const { kid, privateKey } = test.azure.keys.current;
    return new SignJWT({ ...claims, ...overrides }).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(privateKey);
  }

  beforeAll(async () => {
    test = await startTestAzure();
    valid = await tokenFor(cognitive);
    claims = JSON.parse(Buffer.from(valid.split('.')[1]!, 'base64url').toString()) as JWTPayload;
  });
  afterAll(() => test.stop());

  describe('authenticate', () => {
    it('accepts a managed-identity token for its audience, with or without a trailing slash', async () => {
      const caller = await test.azure.guard.authenticate(`Bearer ${valid}`, [`${cognitive}/`]);
      const identity = test.azure.directory.userAssignedIdentity('id-keyless')!;
      expect(caller).toMatchObject({ principalId: identity.principalId, clientId: identity.clientId, audience: cognitive });
    });

    const now = () => Math.floor(Date.now() / 1000);
    it.each<[string, () => Promise<string | undefined>, string]>([
      ['no token', async () => undefined, 'missing'],
      ['a token that is not a JWT', async () => 'not.a.jwt', 'malformed'],
      ['a forged payload (signature of another payload)', async () => {
        const [header, , signature] = valid.split('.');
        const forged = Buffer.from(JSON.stringify({ ...claims, oid: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
        return `${header}.${forged}.${signature}`;
      }, 'bad-signature'],
      ['a token signed by a key the tenant does not publish', async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'someone-elses-key' }).sign(privateKey);
      }, 'unknown-key'],
      ['an expired token (beyond the 5-minute skew)', () => resign({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 301 }), 'expired'],
      ['a token not valid yet (beyond the skew)', () => resign({ nbf: now() + 600, exp: now() + 3600 }), 'not-yet-valid'],
      ['a token for another audience', () => resign({ aud: 'https://vault.azure.net' }), 'wrong-audience'],
      ['a token from another issuer', () => resign({ iss: 'https://sts.windows.net/00000000-0000-4000-8000-000000000000/' }), 'wrong-issuer'],
      ['a token for another tenant', () => resign({ tid: '00000000-0000-4000-8000-000000000000' }), 'wrong-tenant'],
      ['an unsigned token (alg none)', async () => `${base64url({ alg: 'none', typ: 'JWT' })}.${valid.split('.')[1]}.`, 'malformed'],
      ['a token with alg none and its original signature', async () => `${base64url({ ...header(), alg: 'none' })}.${valid.split('.').slice(1).join('.')}`, 'malformed'],
      ["a token signed HS256 with the tenant's public key as the secret (algorithm confusion)", async () => {
        const forged = `${base64url({ ...header(), alg: 'HS256' })}.${base64url({ ...claims, oid: '00000000-0000-4000-8000-000000000000' })}`;
        const secret = Buffer.from(test.azure.keys.jwks().keys[0]!.n!, 'base64url');
        return `${forged}.${createHmac('sha256', secret).update(forged).digest('base64url')}`;
      }, 'malformed'],
      ['a token that names its own key set (jku)', async () => `${base64url({ ...header(), jku: 'https://keys.example/jwks', kid: 'theirs' })}.${valid.split('.').slice(1).join('.')}`, 'unknown-key'],
    ])('rejects %s', async (_case, token, reason) => {
      await expect(test.azure.guard.authenticate(await token(), [cognitive])).rejects.toMatchObject({ name: 'TokenRejectedError', reason });
    });

    it('accepts a token expired by less than the clock skew', async () => {
      const token = await resign({ exp: now() - 60 });
      await expect(test.azure.guard.authenticate(token, [cognitive])).resolves.toMatchObject({ audience: cognitive });
    });
  });

  describe('authorize', () => {
    const scopes = () => ({
      openAi: test.azure.directory.resourceId('openAi'),
      vision: test.azure.directory.resourceId('vision'),
      queue: `${test.azure.directory.resourceId('serviceBus')}/queues/recommendation-requests`,
      otherQueue: `${test.azure.directory.resourceId('serviceBus')}/queues/not-granted`,
      subscription: `${test.azure.directory.resourceId('serviceBus')}/topics/events/subscriptions/vision`,
    });
    const check = async (action: string, scope: string) => {
      const caller = await test.azure.guard.authenticate(valid, [cognitive]);
      return test.azure.guard.authorize(caller, action, scope, { resource: 'test', operation: 'check' });
    };

    it.each([
      ['OpenAI chat on the OpenAI account', dataActions.openAiChatCompletions, 'openAi', true, 'Cognitive Services OpenAI User'],
      ['embeddings on the OpenAI account', dataActions.openAiEmbeddings, 'openAi', true, 'Cognitive Services OpenAI User'],
      ['image analysis on the Vision account', dataActions.visionAnalyze, 'vision', true, 'Cognitive Services User'],
      ['image analysis on the OpenAI account (OpenAI User does not grant it)', dataActions.visionAnalyze, 'openAi', false, undefined],
      ['send to a queue granted by the access file', dataActions.serviceBusSend, 'queue', true, 'Azure Service Bus Data Sender'],
      ['send to a queue not in the access file', dataActions.serviceBusSend, 'otherQueue', false, undefined],
      ['receive from a granted subscription', dataActions.serviceBusReceive, 'subscription', true, 'Azure Service Bus Data Receiver'],
    ] as const)('decides %s', async (_case, action, scope, allowed, role) => {
      const decision = await check(action, scopes()[scope]);
      expect(decision.allowed).toBe(allowed);
      expect(decision.assignment?.roleDefinitionName).toBe(role);
    });

    it('applies an assignment at an enclosing scope to everything beneath it', async () => {
      const identity = test.azure.directory.userAssignedIdentity('id-keyless')!;
      expect((await check(dataActions.serviceBusSend, scopes().otherQueue)).allowed).toBe(false);
      const created = test.azure.roleAssignments.create({
        principalId: identity.principalId,
        role: findRole('Azure Service Bus Data Sender')!,
        scope: test.azure.directory.resourceGroupId,
        source: 'cli',
      });
      expect((await check(dataActions.serviceBusSend, scopes().otherQueue)).allowed).toBe(true);
      test.azure.roleAssignments.delete({ id: created.id });
      expect((await check(dataActions.serviceBusSend, scopes().otherQueue)).allowed).toBe(false);
    });

    it('denies on the next check once the granting assignment is deleted, naming the role needed, and logs both', async () => {
      const identity = test.azure.directory.userAssignedIdentity('id-keyless')!;
      const before = await check(dataActions.openAiChatCompletions, scopes().openAi);
      const deleted = test.azure.roleAssignments.delete({ principalId: identity.principalId, role: findRole('Cognitive Services OpenAI User')!, scope: scopes().openAi });
      const after = await check(dataActions.openAiChatCompletions, scopes().openAi);

      expect(before.allowed).toBe(true);
      expect(deleted).toHaveLength(1);
      expect(after).toMatchObject({ allowed: false, roleNeeded: { name: 'Cognitive Services OpenAI User' } });
      const [latest, previous] = test.azure.auditLog.authorizations({ principal: identity.principalId, limit: 2 });
      expect(latest).toMatchObject({ decision: 'denied', dataAction: dataActions.openAiChatCompletions, scope: scopes().openAi, identity: 'id-keyless' });
      expect(previous).toMatchObject({ decision: 'allowed', role: 'Cognitive Services OpenAI User', assignmentId: deleted[0]!.id });
    });

    it('restores access-file assignments when the access file is re-applied', async () => {
      test.azure.applyAccessFile();
      expect((await check(dataActions.openAiChatCompletions, scopes().openAi)).allowed).toBe(true);
    });
  });

  describe('when the signing key rolls over', () => {
    it('publishes both keys, keeps earlier tokens valid, and signs new tokens with the new key', async () => {
      const before = await tokenFor(cognitive);
      const newKid = await test.azure.keys.rotate();
      const after = await tokenFor(cognitive);
      const env = test.azure.hostEnv('gateway');
      const jwks = (await (await fetch(`${env.AZURE_AUTHORITY_HOST}/${env.AZURE_TENANT_ID}/discovery/v2.0/keys`)).json()) as { keys: { kid: string }[] };

      expect(jwks.keys.map((k) => k.kid)).toEqual([newKid, expect.any(String)]);
      await expect(test.azure.guard.authenticate(before, [cognitive])).resolves.toBeDefined();
      expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString())).toMatchObject({ kid: newKid });

      // A second rollover right away keeps the key that signed `before` (and every service's cached token) published.
      await test.azure.keys.rotate();
      await expect(test.azure.guard.authenticate(before, [cognitive])).resolves.toBeDefined();
      expect(test.azure.keys.jwks().keys).toHaveLength(3);
    });

    it('retires a key once every token it signed has expired (the longest lifetime plus the skew)', async () => {
      const token = await tokenFor(cognitive);
      const signedBy = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
      await test.azure.keys.rotate();
      const lifetimeAndSkewInMs = (86_400 + 300) * 1000;
      // A rollover just before that: still published. One just after: gone, with the tokens it signed.
      await test.azure.keys.rotate(Date.now() + lifetimeAndSkewInMs - 60_000);
      expect(test.azure.keys.jwks().keys.map((k) => k.kid)).toContain(signedBy);
      await test.azure.keys.rotate(Date.now() + lifetimeAndSkewInMs + 60_000);
      expect(test.azure.keys.jwks().keys.map((k) => k.kid)).not.toContain(signedBy);
      await expect(test.azure.guard.authenticate(token, [cognitive])).rejects.toMatchObject({ reason: 'unknown-key' });
    });
  });
});
