import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { systemInstancesFileName } from '@keyless/contracts';
import type { ConsoleLog } from '../data-plane.js';
import type { LocalAzureHome } from '../home.js';
import { answeringClientErrors, BodyTooLargeError, listenerOptions, readBody, Router, sendJson, type ClientErrorShape } from '../http/http-kit.js';
import type { LocalAzureConfig } from '../config/local-azure-config.js';
import { ManagementReply, type ManagementApi } from '../management/management-api.js';
import { listen, type BindOptions, type BoundListener } from '../net/listen.js';
import type { ServiceBusOperations } from '../servicebus/admin-routes.js';
import type { ServerCredentials } from '../tls/certificate-authority.js';
import { count, html, type SafeHtml } from './html.js';
import { principalTypeOf } from '../entra/directory.js';
import { portalActions, portalSignInChecks, type PortalPermission } from './operator-authority.js';
import { portalAssets } from './portal-assets.js';
import { layout, messagePage, type PortalSectionPath } from './portal-layout.js';
import {
  alertsPage,
  iamPage,
  identitiesPage,
  logsPage,
  messagesPage,
  messagesPageSize,
  overviewPage,
  principalLabel,
  purgedNotice,
  purgePage,
  removeAssignmentPage,
  resubmitPage,
  resubmittedNotice,
  roleFromForm,
  scopeOptions,
  serviceBusPage,
  subQueueFrom,
  subQueueHref,
  systemPage,
  type PageContent,
  type PortalData,
  type SubQueue,
} from './portal-pages.js';
import { PortalSessions, takeNotice, type PortalSession, type PortalSessionsOptions } from './portal-sessions.js';
import { instanceHealth } from './system-health.js';

/** What the portal needs from the local Azure: what its pages read, and what its listener and sessions need. */
export interface PortalContext extends Omit<PortalData, 'home'> {
  home: LocalAzureHome;
  tls: ServerCredentials;
  bind: BindOptions;
  /** How long the listener waits for slow clients (the configuration's `network.limits`). */
  limits: LocalAzureConfig['network']['limits'];
  publicHost: string;
  sessions?: PortalSessionsOptions;
  log: ConsoleLog;
}

/** The running portal. */
export interface LocalPortal {
  /** `https://<host>:<port>/`. */
  url: string;
  sessions: PortalSessions;
  /**
   * Adds `POST /portal/signInLinks` to the management API: a one-time sign-in link for the calling user, whose ARM
   * token the management API has verified (users who may read the subscription's assignments and logs).
   */
  adminRoutes(api: ManagementApi): void;
  stop(): Promise<void>;
}

const cookieName = '__Host-keyless-portal';
const formLimitInBytes = 16 * 1024;

/** Every response's security headers: a strict CSP (only the portal's own script and style), no framing, no caching, no referrer to other sites. */
const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: with it, browsers send `Origin: null` on form posts, and the origin check needs the real one.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * The local portal: server-rendered pages over HTTPS with the local CA, for the signed-in operator only. A browser
 * signs in with a one-time link the CLI mints (`npm run -s local-azure -- portal`) and then holds a session cookie
 * (HttpOnly, Secure, SameSite=Strict, `__Host-` prefix, fixed lifetime). Every form that changes state carries the
 * session's anti-forgery token and must come from the portal's own origin; every write is authorized by the
 * {@link OperatorAuthority} with the control plane's RBAC action, so an operator without the right gets 403 as from ARM.
 */
export async function startPortal(context: PortalContext): Promise<LocalPortal> {
  const sessions = new PortalSessions(context.sessions);
  const data: PortalData = {
    directory: context.directory,
    roleAssignments: context.roleAssignments,
    auditLog: context.auditLog,
    authority: context.authority,
    home: context.home,
    ...(context.alerts ? { alerts: context.alerts } : {}),
    ...(context.serviceBus ? { serviceBus: context.serviceBus } : {}),
    ...(context.sharedIdentity ? { sharedIdentity: context.sharedIdentity } : {}),
  };
  /** Open event streams, each with the session cookie and the request it was opened with. */
  const streams = new Map<ServerResponse, { cookie: string; req: IncomingMessage }>();
  const instancesFile = join(context.home.root, systemInstancesFileName);
  /** What gets an operator a sign-in link for this portal (this local Azure's home named, unless the default). */
  const signInCommand = context.home.command('npm run -s local-azure -- portal');
  let origin = '';

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { ...securityHeaders, 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const page = (res: ServerResponse, session: PortalSession, section: PortalSectionPath | undefined, content: PageContent, status = 200): void =>
    send(res, status, layout({ title: content.title, ...(section ? { section } : {}), session, body: content.body }), {});
  const redirect = (res: ServerResponse, location: string, headers: Record<string, string> = {}): void => {
    res.writeHead(303, { ...securityHeaders, location, 'content-length': '0', ...headers });
    res.end();
  };
  const signInRequired = (res: ServerResponse): void =>
    send(
      res,
      401,
      messagePage('Sign in required', html`The portal has no anonymous access. Get a one-time sign-in link as the signed-in operator with <code>${signInCommand}</code> and open it.`),
    );
  const forbidden = (res: ServerResponse, session: PortalSession, message: string): void =>
    send(res, 403, messagePage('Access denied', html`<strong>AuthorizationFailed</strong>: ${message}`, session));

  const sessionChecks = portalSignInChecks(context.directory.subscriptionId);
  /**
   * Why the session's user may no longer use the portal, if so: the sign-in's checks asked again, as ARM authorizes
   * every call of Azure's portal, so a user whose Reader role was removed sees nothing more from a session opened
   * before. A refusal is logged (with the page asked for); an allowed answer is not, or every page view would add two
   * lines to the authorization log.
   */
  const accessRefusal = (session: PortalSession, req: IncomingMessage): string | undefined => {
    for (const { scope, ...permission } of sessionChecks) {
      const decision = context.authority.authorize(session.operator, permission as PortalPermission, scope, `portal ${req.method} ${req.url?.split('?')[0]}`, { recordAllowed: false });
      if (!decision.allowed) return decision.message ?? `The client '${session.operator.name}' with object id '${session.operator.principalId}' does not have authorization to use the portal.`;
    }
    return undefined;
  };
  /**
   * The session of a request whose user may still use the portal (see {@link accessRefusal}), or undefined (and a 401
   * or 403 page sent). `checkAccess` false: the session alone (signing out needs no right).
   */
  const authenticated = (req: IncomingMessage, res: ServerResponse, checkAccess = true): PortalSession | undefined => {
    const session = sessions.session(readCookie(req, cookieName));
    const refusal = session && checkAccess ? accessRefusal(session, req) : undefined;
    if (!session) signInRequired(res);
    else if (refusal) forbidden(res, session, refusal);
    return refusal ? undefined : session;
  };
  /** The form of a state-changing request, once its session, origin and anti-forgery token check out (and its user's access, but for `checkAccess` false). */
  const verifiedForm = async (req: IncomingMessage, res: ServerResponse, checkAccess = true): Promise<{ session: PortalSession; form: URLSearchParams } | undefined> => {
    const session = authenticated(req, res, checkAccess);
    if (!session) return undefined;
    const fetchSite = req.headers['sec-fetch-site'];
    const requestOrigin = req.headers.origin;
    let form: URLSearchParams | undefined;
    try {
      form = new URLSearchParams((await readBody(req, formLimitInBytes)).toString('utf8'));
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
    }
    const sameOrigin = (requestOrigin === undefined || requestOrigin === origin) && (fetchSite === undefined || fetchSite === 'same-origin');
    if (!form || !sameOrigin || !sessions.checkCsrf(session, form.get('_csrf') ?? undefined)) {
      context.log(`[portal] refused a form post to ${req.url}: ${!form ? 'body too large' : !sameOrigin ? `origin ${requestOrigin ?? '-'}, fetch site ${String(fetchSite ?? '-')}` : 'anti-forgery token missing or wrong'}`);
      send(res, 403, messagePage('Request refused', 'The form could not be verified (it did not come from this portal, or the page is too old). Reload the page and try again.', session));
      return undefined;
    }
    return { session, form };
  };
  // The name is not repeated: a link must not put words of its choosing in the portal's own alert.
  const noSuchEntity = (res: ServerResponse, session: PortalSession): void =>
    send(res, 404, messagePage('Not found', 'There is no such queue or subscription in the namespace (deleted, or a mistyped name). The Service Bus page lists them all.', session));
  // The value is not repeated, as the entity's name is not.
  const noSuchPart = (res: ServerResponse, session: PortalSession): void =>
    send(res, 400, messagePage('Bad request', 'Purge takes the messages of a queue or subscription, or its dead-letter queue: use the Purge button of the one to purge.', session));
  /** `detail` goes into the authorization log's operation, where the path and scope alone do not say what was done. */
  const authorize = (session: PortalSession, permission: PortalPermission, scope: string, req: IncomingMessage, res: ServerResponse, detail?: string): boolean => {
    const decision = context.authority.authorize(session.operator, permission, scope, `portal ${req.method} ${req.url?.split('?')[0]}${detail ? ` (${detail})` : ''}`);
    if (!decision.allowed) {
      const action = 'action' in permission ? permission.action : permission.dataAction;
      forbidden(res, session, decision.message ?? `The client '${session.operator.name}' with object id '${session.operator.principalId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid.`);
    }
    return decision.allowed;
  };
  /**
   * The Service Bus of `entity` once the entity exists and the session's user holds `permission` on it (checked and
   * logged); else undefined, refused with a 404 or a 403.
   */
  const entityAccess = (session: PortalSession, entity: string, permission: PortalPermission, req: IncomingMessage, res: ServerResponse): ServiceBusOperations | undefined => {
    const found = receivable(data, entity);
    if (!context.serviceBus || !found) noSuchEntity(res, session);
    else if (authorize(session, permission, found.resourceId, req, res)) return context.serviceBus;
    return undefined;
  };
  /**
   * The entity and the part of it a purge link or form names (`entity`, `subqueue`), once the entity exists, the part is
   * one of the two and the session's user may purge it (the CLI's right, checked and logged); else undefined, refused.
   */
  const purgeTarget = (session: PortalSession, params: URLSearchParams, req: IncomingMessage, res: ServerResponse): { entity: string; subQueue: SubQueue; serviceBus: ServiceBusOperations } | undefined => {
    const entity = params.get('entity') ?? '';
    const found = receivable(data, entity);
    const subQueue = subQueueFrom(params.get('subqueue'));
    if (!context.serviceBus || !found) noSuchEntity(res, session);
    else if (!subQueue) noSuchPart(res, session);
    else if (authorize(session, portalActions.serviceBusPurge, found.resourceId, req, res, purgeDetail[subQueue])) return { entity, subQueue, serviceBus: context.serviceBus };
    return undefined;
  };
  /** A page of an entity's messages or of its dead-letter queue (peek: Azure Service Bus Data Owner). */
  const messages = (subQueue: SubQueue) => async (req: IncomingMessage, res: ServerResponse, { url }: { url: URL }): Promise<void> => {
    const session = authenticated(req, res);
    if (!session) return;
    const entity = url.searchParams.get('entity') ?? '';
    const serviceBus = entityAccess(session, entity, portalActions.serviceBusPeek, req, res);
    if (!serviceBus) return;
    // The whole counts beside a page of 100: purge and resubmit take them all (but those a receiver holds locked, and
    // for a resubmit those without the session id a session entity requires), and the buttons say how many.
    const from = Math.max(0, Math.floor(Number(url.searchParams.get('from')) || 0));
    const messages = serviceBus.peek(entity, { deadLetter: subQueue === 'deadletter', from, limit: messagesPageSize });
    const counts = { active: serviceBus.messageCounts(entity), deadletter: serviceBus.messageCounts(entity, { deadLetter: true }) };
    const totals = { active: counts.active.total, deadletter: counts.deadletter.total };
    const done = takeNotice(session);
    const resubmit = subQueue === 'deadletter' ? { resubmit: serviceBus.resubmitCounts(entity) } : {};
    page(res, session, '/servicebus', messagesPage({ entity, subQueue, messages, totals, locked: counts[subQueue].locked, ...resubmit, from, ...(done ? { done } : {}) }));
  };
  const read = (section: PortalSectionPath, render: (session: PortalSession, url: URL) => PageContent | Promise<PageContent>) =>
    async (req: IncomingMessage, res: ServerResponse, { url }: { url: URL }): Promise<void> => {
      const session = authenticated(req, res);
      if (session) page(res, session, section, await render(session, url));
    };

  // Every answer is a page with the portal's headers, the refusals and failures the router makes included.
  const sessionOf = (req: IncomingMessage): PortalSession | undefined => sessions.session(readCookie(req, cookieName));
  const router = new Router(
    (line) => context.log(`[portal] ${line}`),
    (req, res) => send(res, 404, messagePage('Not found', 'There is no such page in the portal.', sessionOf(req))),
    {
      methodNotAllowed: (req, res) =>
        send(res, 405, messagePage('Not allowed', 'This page cannot be asked for that way: use the portal\'s links and buttons.', sessionOf(req))),
      failed: (req, res) =>
        send(res, 500, messagePage('Something went wrong', 'The portal could not answer this request; the local Azure\'s console shows why. Reload the page to try again.', sessionOf(req))),
    },
  );
  for (const [path, asset] of Object.entries(portalAssets)) {
    router.on('GET', new RegExp(`^${path.replace(/[.]/g, '\\.')}$`), (_req, res) => {
      res.writeHead(200, { ...securityHeaders, 'content-type': asset.type, 'cache-control': 'max-age=300' });
      res.end(asset.body);
    });
  }
  router
    .on('GET', /^\/signin$/, (_req, res, { url }) => {
      const result = sessions.redeem(url.searchParams.get('code') ?? '');
      if (typeof result === 'string') {
        const why = {
          unknown: 'This sign-in link is not valid.',
          expired: `This sign-in link has expired (links are valid for ${duration(sessions.linkLifetimeInSeconds)}).`,
          used: 'This sign-in link has already been used (each link works once).',
        }[result];
        return send(res, 401, messagePage('Sign-in refused', html`${why} Get a new one with <code>${signInCommand}</code>.`));
      }
      context.log(`[portal] ${result.operator.name} signed in`);
      redirect(res, '/', { 'set-cookie': `${cookieName}=${result.id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${sessions.sessionLifetimeInSeconds}` });
    })
    .on('GET', /^\/signed-out$/, (_req, res) => send(res, 200, messagePage('Signed out', html`You are signed out. Sign in again with <code>${signInCommand}</code>.`)))
    .on('POST', /^\/signout$/, async (req, res) => {
      const verified = await verifiedForm(req, res, false);
      if (!verified) return;
      const cookie = readCookie(req, cookieName)!;
      sessions.end(cookie);
      // This session's live streams (other tabs) end with it.
      for (const [stream, opener] of streams) if (opener.cookie === cookie) endStream(stream);
      redirect(res, '/signed-out', { 'set-cookie': `${cookieName}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0` });
    })
    .on('GET', /^\/$/, read('/', () => overviewPage(data)))
    .on('GET', /^\/identities$/, read('/identities', () => identitiesPage(data)))
    .on('GET', /^\/iam$/, read('/iam', (session, url) => iamPage(data, session, url.searchParams, takeNotice(session))))
    .on('GET', /^\/logs$/, read('/logs', (_session, url) => logsPage(data, url.searchParams)))
    .on('GET', /^\/alerts$/, read('/alerts', () => alertsPage(data)))
    .on('GET', /^\/servicebus$/, read('/servicebus', (_session, url) => serviceBusPage(data, url.searchParams)))
    .on('GET', /^\/system$/, read('/system', async () => systemPage(await instanceHealth(instancesFile), instancesFile)))
    .on('POST', /^\/iam\/assignments$/, async (req, res) => {
      const verified = await verifiedForm(req, res);
      if (!verified) return;
      const { session, form } = verified;
      const scope = scopeOptions(data).find((s) => s.id === form.get('scope'));
      const role = roleFromForm(form.get('roleId') ?? undefined);
      const principalId = form.get('principalId') ?? '';
      // A refused form comes back as the IAM page with the error above it and the user's choices kept.
      const refuse = (status: number, error: SafeHtml): void => {
        const query = new URLSearchParams(scope ? { scope: scope.id } : {});
        page(res, session, '/iam', iamPage(data, session, query, undefined, { error, roleId: form.get('roleId') ?? '', principalId }), status);
      };
      // A scope the list offered when the page was drawn, deleted since (a queue): ARM's 404, not "choose from the lists".
      if (!scope && form.get('scope')) {
        return refuse(404, html`<strong>ResourceNotFound</strong>: The scope you chose does not exist (any more) in this subscription; nothing changed. Choose a scope from the list.`);
      }
      if (!scope || !role || !/^[\w-]{1,64}$/.test(principalId)) {
        return refuse(400, html`Choose a role, a principal and a scope from the lists.`);
      }
      if (!authorize(session, portalActions.writeAssignments, scope.id, req, res)) return;
      // By object id only, as ARM takes it: findPrincipal also matches names and client ids, which would leave an
      // assignment that names no principal.
      const principal = context.directory.findPrincipal(principalId);
      if (principal?.principalId !== principalId) {
        return refuse(400, html`<strong>PrincipalNotFound</strong>: Principal ${principalId} does not exist in the directory ${context.directory.tenantId}. Choose a principal from the list.`);
      }
      const who = principalLabel(data, principalId);
      // As ARM answers 409 RoleAssignmentExists: saying "Assigned" would claim a change that did not happen.
      if (context.roleAssignments.find(principalId, role, scope.id)) {
        return refuse(409, html`<strong>RoleAssignmentExists</strong>: ${who} already has ${role.name} on ${scope.label}; nothing changed.`);
      }
      context.roleAssignments.create({
        principalId,
        principalType: principalTypeOf(principal),
        role,
        scope: scope.id,
        source: 'portal',
        createdBy: session.operator.principalId,
      });
      context.log(`[portal] ${session.operator.name} assigned "${role.name}" to ${principalId} on ${scope.id}`);
      session.notice = `Assigned ${role.name} to ${who} on ${scope.label}.`;
      redirect(res, `/iam?scope=${encodeURIComponent(scope.id)}`);
    })
    // Removing asks first: the list's Remove opens this page, and only its "Yes, remove" posts the deletion.
    .on('GET', /^\/iam\/assignments\/remove$/, (req, res, { url }) => {
      const session = authenticated(req, res);
      if (!session) return;
      const assignment = context.roleAssignments.all().find((a) => a.id === url.searchParams.get('assignmentId'));
      if (!assignment) return send(res, 404, messagePage('Not found', 'That role assignment no longer exists.', session));
      // Refused at the first click, not after the operator confirmed (the POST checks again).
      if (!authorize(session, portalActions.deleteAssignments, assignment.scope, req, res)) return;
      const back = scopeOptions(data).find((s) => s.id === url.searchParams.get('scope'))?.id ?? assignment.scope;
      page(res, session, '/iam', removeAssignmentPage(data, session, assignment, back));
    })
    .on('POST', /^\/iam\/assignments\/delete$/, async (req, res) => {
      const verified = await verifiedForm(req, res);
      if (!verified) return;
      const { session, form } = verified;
      const assignment = context.roleAssignments.all().find((a) => a.id === form.get('assignmentId'));
      const back = form.get('scope') ?? '';
      if (!assignment) return send(res, 404, messagePage('Not found', 'That role assignment no longer exists.', session));
      if (!authorize(session, portalActions.deleteAssignments, assignment.scope, req, res)) return;
      context.roleAssignments.delete({ id: assignment.id });
      context.log(`[portal] ${session.operator.name} removed "${assignment.roleDefinitionName}" of ${assignment.principalId} on ${assignment.scope}`);
      const where = scopeOptions(data).find((s) => s.id.toLowerCase() === assignment.scope.toLowerCase())?.label ?? assignment.scope;
      session.notice = `Removed ${assignment.roleDefinitionName} of ${principalLabel(data, assignment.principalId)} on ${where}.`;
      redirect(res, `/iam?scope=${encodeURIComponent(back || assignment.scope)}`);
    })
    .on('GET', /^\/servicebus\/messages$/, messages('active'))
    .on('GET', /^\/servicebus\/deadletters$/, messages('deadletter'))
    // Resubmitting asks first, as removing does.
    .on('GET', /^\/servicebus\/resubmit$/, (req, res, { url }) => {
      const session = authenticated(req, res);
      if (!session) return;
      const entity = url.searchParams.get('entity') ?? '';
      const serviceBus = entityAccess(session, entity, portalActions.serviceBusResubmit, req, res);
      if (!serviceBus) return;
      // Nothing that can go back: the dead-letter page says why (or that it is empty).
      const counts = serviceBus.resubmitCounts(entity);
      if (!counts.resubmittable) return redirect(res, `/servicebus/deadletters?entity=${encodeURIComponent(entity)}`);
      page(res, session, '/servicebus', resubmitPage(session, entity, counts));
    })
    .on('POST', /^\/servicebus\/resubmit$/, async (req, res) => {
      const verified = await verifiedForm(req, res);
      if (!verified) return;
      const { session, form } = verified;
      const entity = form.get('entity') ?? '';
      const serviceBus = entityAccess(session, entity, portalActions.serviceBusResubmit, req, res);
      if (!serviceBus) return;
      const result = serviceBus.resubmit(entity);
      context.log(`[portal] ${session.operator.name} resubmitted ${result.resubmitted} dead-lettered messages of ${entity}`);
      session.notice = resubmittedNotice(entity, result);
      redirect(res, `/servicebus/deadletters?entity=${encodeURIComponent(entity)}`);
    })
    // Purging asks first too, with the count as of the question; only its Yes posts the purge.
    .on('GET', /^\/servicebus\/purge$/, (req, res, { url }) => {
      const session = authenticated(req, res);
      const target = session && purgeTarget(session, url.searchParams, req, res);
      if (!session || !target) return;
      const { entity, subQueue, serviceBus } = target;
      // Nothing a purge would delete (empty, or every message locked by a receiver): the part's page says why.
      const counts = serviceBus.messageCounts(entity, { deadLetter: subQueue === 'deadletter' });
      if (counts.total === counts.locked) return redirect(res, subQueueHref(entity, subQueue));
      page(res, session, '/servicebus', purgePage(session, entity, subQueue, counts, new Date().toISOString()));
    })
    .on('POST', /^\/servicebus\/purge$/, async (req, res) => {
      const verified = await verifiedForm(req, res);
      if (!verified) return;
      const { session, form } = verified;
      const target = purgeTarget(session, form, req, res);
      if (!target) return;
      const { entity, subQueue, serviceBus } = target;
      // What is there now goes, as with the CLI and Azure's purge: not only what the confirmation counted; locked messages stay.
      const result = serviceBus.purge(entity, { deadLetter: subQueue === 'deadletter' });
      context.log(
        `[portal] ${session.operator.name} purged ${result.purged} messages ${subQueue === 'deadletter' ? 'from the dead-letter queue of' : 'of'} ${entity} (${result.lockedKept} locked kept)`,
      );
      const expected = /^\d{1,9}$/.test(form.get('expected') ?? '') ? Number(form.get('expected')) : undefined;
      session.notice = purgedNotice(entity, subQueue, result, expected);
      redirect(res, subQueueHref(entity, subQueue));
    })
    .on('GET', /^\/events$/, (req, res) => {
      const cookie = readCookie(req, cookieName);
      const session = sessions.session(cookie);
      if (!session) return sendJson(res, 401, { error: { code: 'Unauthorized', message: 'Sign in first.' } }, securityHeaders);
      const refusal = accessRefusal(session, req);
      if (refusal) return sendJson(res, 403, { error: { code: 'AuthorizationFailed', message: refusal } }, securityHeaders);
      res.writeHead(200, { ...securityHeaders, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      streams.set(res, { cookie: cookie!, req });
      req.on('close', () => streams.delete(res));
    });

  /** Ends a stream (and forgets it). */
  const endStream = (stream: ServerResponse): void => {
    streams.delete(stream);
    stream.end();
  };
  // A stream lives no longer than its user's access either: after a change of role assignments (deferred to the end of
  // the batch, as a reset deletes and creates), the streams of users who lost it are ended.
  let accessRecheckQueued = false;
  const recheckStreams = (): void => {
    if (accessRecheckQueued) return;
    accessRecheckQueued = true;
    setImmediate(() => {
      accessRecheckQueued = false;
      // Each is taken out while it is checked: its refusal, logged, is announced to the streams, not to it.
      for (const [stream, opened] of [...streams]) {
        streams.delete(stream);
        const session = sessions.session(opened.cookie);
        if (session && !accessRefusal(session, opened.req)) streams.set(stream, opened);
        else stream.end();
      }
    });
  };

  // A stream lives no longer than its session: after sign-out or expiry it is ended, not fed (its announcements
  // name identities and refused actions). The browser's EventSource does not reconnect after the 401 that follows.
  const push = (kind: string, announce: string): void => {
    const message = `event: ${kind}\ndata: ${JSON.stringify({ announce })}\n\n`;
    for (const [stream, { cookie }] of streams) {
      if (sessions.session(cookie)) stream.write(message);
      else endStream(stream);
    }
  };
  const unsubscribe = [
    context.auditLog.onRecord((kind, record) => {
      if (kind === 'sign-in' && 'outcome' in record) {
        const where = record.endpoint === 'postgres' ? `PostgreSQL login as ${record.user}` : `sign-in ${record.host ? `on host ${record.host}` : `at the ${record.endpoint} endpoint`}`;
        push('sign-in', record.outcome === 'failure' ? `Failed ${where}` : '');
      } else if (kind === 'authorization' && 'decision' in record) {
        push('authorization', record.decision === 'denied' ? `Denied: ${record.identity ?? (record.principalId || 'anonymous')} ${record.action ?? record.dataAction ?? record.operation ?? ''}` : '');
      } else if (kind === 'refusal') {
        // Not announced: any client can send them by the dozen (the table still updates).
        push('refusal', '');
      }
    }),
    context.roleAssignments.onChange(() => {
      push('assignment', 'Role assignments changed');
      recheckStreams();
    }),
    ...(context.alerts ? [context.alerts.engine.onAlert((alert, transition) => transition !== 'Updated' && push('alert', `Alert ${transition.toLowerCase()}: ${alert.ruleName}`))] : []),
  ];

  // A request the parser refuses gets a page too, with the portal's headers (no session: the request was not read).
  const refusalPage: ClientErrorShape = ({ title, detail }) => ({ contentType: 'text/html; charset=utf-8', body: messagePage(title, detail), headers: securityHeaders });
  const listener: BoundListener = await listen(
    () =>
      answeringClientErrors(
        createHttpsServer({ cert: context.tls.certPem, key: context.tls.keyPem, ...listenerOptions(context.limits) }, router.listener()),
        { listener: 'portal', auditLog: context.auditLog, log: context.log },
        refusalPage,
      ),
    context.bind,
  );
  origin = `https://${context.publicHost}:${listener.port}`;
  const url = `${origin}/`;
  return {
    url,
    sessions,
    adminRoutes(api) {
      api.add({
        method: 'POST',
        pattern: /^\/portal\/signInLinks$/,
        access: () => portalSignInChecks(context.directory.subscriptionId),
        handle: ({ caller }) => {
          const operator = { principalId: caller.principalId, name: caller.displayName, clientId: caller.clientId, principalType: caller.principalType };
          const link = sessions.mintLink(operator);
          return new ManagementReply(201, { url: `${origin}/signin?code=${link.code}`, expiresOn: new Date(link.expiresAt).toISOString(), operator: operator.name });
        },
      });
    },
    async stop() {
      for (const off of unsubscribe) off();
      for (const stream of streams.keys()) stream.end();
      await listener.close();
    },
  };
}

/** How the authorization log's operation names the part a purge deletes. */
const purgeDetail: Record<SubQueue, string> = { active: 'messages', deadletter: 'dead-letter queue' };

/**
 * A queue (`orders`) or subscription (`events/Subscriptions/vision`) named as the entity list names it: its ARM id
 * (the scope its operator actions are checked at).
 */
function receivable(data: PortalData, entity: string): { resourceId: string } | undefined {
  return data.serviceBus?.deadLetterCounts().find((row) => row.entity === entity);
}

/** `300` → "5 minutes", `90` → "90 seconds": the configured link lifetime as the refusal page says it. */
function duration(seconds: number): string {
  return seconds % 60 === 0 ? count(seconds / 60, 'minute') : count(seconds, 'second');
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

