import { request } from 'node:https';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { portalCaller, type PortalCaller } from './support.js';

// A portal session outlives nothing its user lost: each request is authorized anew, as ARM authorizes each call of
// Azure's portal, so removing a user's Reader role ends what the user's open session shows at its next request.
describe('The local portal, for a user whose access is removed while signed in', () => {
  let test: TestAzure;
  let call: PortalCaller['call'];
  let signIn: PortalCaller['signIn'];
  let post: PortalCaller['post'];
  const readerAt = (scope: string) => ({ principalId: test.azure.directory.findUser('reader')!.principalId, role: findRole('Reader')!, scope });
  const subscription = () => `/subscriptions/${test.azure.directory.subscriptionId}`;

  beforeAll(async () => {
    test = await startTestAzure();
    ({ call, signIn, post } = portalCaller(test));
  });
  afterAll(() => test.stop());
  // Every case starts with the reader's declared Reader assignment in place.
  afterEach(() => {
    if (!test.azure.roleAssignments.find(readerAt(subscription()).principalId, findRole('Reader')!, subscription())) {
      test.azure.roleAssignments.create({ ...readerAt(subscription()), source: 'cli' });
    }
  });

  it.each(['/', '/identities', '/iam', '/logs', '/alerts', '/servicebus', '/system'])('refuses %s with 403 AuthorizationFailed once the Reader role is gone, and serves it again once it is back', async (path) => {
    const { cookie } = await signIn('reader');
    expect((await call(path, { cookie })).status).toBe(200);
    test.azure.roleAssignments.delete(readerAt(subscription()));
    const refused = await call(path, { cookie });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain(`<strong>AuthorizationFailed</strong>: The client &#39;reader@${test.azure.directory.domain}&#39; with object id`);
    expect(refused.body).toContain('Microsoft.Authorization/roleAssignments/read');
    expect(refused.body).not.toContain('<table');
    test.azure.roleAssignments.create({ ...readerAt(subscription()), source: 'cli' });
    expect((await call(path, { cookie })).status).toBe(200);
  });

  it('logs the refusal as a denied decision of the control plane naming the user and the page', async () => {
    const { cookie } = await signIn('reader');
    test.azure.roleAssignments.delete(readerAt(subscription()));
    await call('/logs', { cookie });
    expect(test.azure.auditLog.authorizations({ limit: 1, where: { resource: 'management' } })[0]).toMatchObject({
      identity: `reader@${test.azure.directory.domain}`,
      action: 'Microsoft.Authorization/roleAssignments/read',
      decision: 'denied',
      operation: 'portal GET /logs',
    });
  });

  it('writes no allowed decision per page view (the sign-in is the logged one)', async () => {
    const { cookie } = await signIn('reader');
    const before = test.azure.auditLog.authorizations({ limit: 1000 }).length;
    expect((await call('/identities', { cookie })).status).toBe(200);
    expect(test.azure.auditLog.authorizations({ limit: 1000 })).toHaveLength(before);
  });

  it('ends an open event stream when the role goes, without announcing its own refusal to it, and refuses a new one with 403', async () => {
    const { cookie } = await signIn('reader');
    const { status, ended, received } = await new Promise<{ status: number; ended: Promise<void>; received: () => string }>((resolve, reject) => {
      const req = request(new URL('/events', test.azure.endpoints.portal), { ca: test.azure.tls.caCertPem, headers: { cookie } });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        resolve({ status: res.statusCode!, ended: new Promise((done) => res.on('close', done)), received: () => body });
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    test.azure.roleAssignments.delete(readerAt(subscription()));
    await ended;
    // The re-check's denial of the stream is announced to the streams that remain, not to the one it ends.
    expect(received()).not.toContain('Denied:');
    const reopened = await call('/events', { cookie });
    expect(reopened.status).toBe(403);
    expect(JSON.parse(reopened.body)).toMatchObject({ error: { code: 'AuthorizationFailed' } });
  });

  it('still signs the user out', async () => {
    const { cookie, csrf } = await signIn('reader');
    test.azure.roleAssignments.delete(readerAt(subscription()));
    const signedOut = await post('/signout', cookie, { _csrf: csrf });
    expect(signedOut.status).toBe(303);
    expect(signedOut.headers.location).toBe('/signed-out');
    test.azure.roleAssignments.create({ ...readerAt(subscription()), source: 'cli' });
    expect((await call('/', { cookie })).status).toBe(401);
  });

  it('keeps serving a user whose access is unchanged (the operator, Owner)', async () => {
    const { cookie } = await signIn();
    test.azure.roleAssignments.delete(readerAt(subscription()));
    expect((await call('/logs', { cookie })).status).toBe(200);
  });
});
