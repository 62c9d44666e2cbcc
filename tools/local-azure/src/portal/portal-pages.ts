import { builtInRoles, effectiveDataActions, endpointOf, findRole, scopeContains } from '@keyless/contracts';
import type { LocalAlerts } from '../alerts/local-alerts.js';
import { alertRules } from '../alerts/alert-rules.js';
import type { Alert } from '../alerts/alert-store.js';
import type { AuditLog, AuthorizationRecord, RefusalRecord, SignInRecord } from '../audit/audit-log.js';
import type { Directory } from '../entra/directory.js';
import type { LocalAzureHome } from '../home.js';
import { managementAudiences } from '../management/control-plane-guard.js';
import type { RoleAssignment, RoleAssignmentStore } from '../rbac/role-assignments.js';
import type { MessageRow, ResubmitCounts, ResubmitResult, ServiceBusOperations, SubQueueCounts } from '../servicebus/admin-routes.js';
import { count, html, noun, type SafeHtml } from './html.js';
import type { OperatorAuthority } from './operator-authority.js';
import { flowDiagram } from './portal-layout.js';
import type { PortalSession } from './portal-sessions.js';
import type { InstanceHealth } from './system-health.js';

/** What the pages read. */
export interface PortalData {
  directory: Directory;
  roleAssignments: RoleAssignmentStore;
  auditLog: AuditLog;
  alerts?: LocalAlerts;
  serviceBus?: ServiceBusOperations;
  authority: OperatorAuthority;
  /** The shared identity of `infra/access.json`. */
  sharedIdentity?: string;
  /** The home, so a command a page names works as printed for a home of its own. */
  home: Pick<LocalAzureHome, 'command'>;
}

/** A page body and its title. */
export interface PageContent {
  title: string;
  body: SafeHtml;
}

const time = (iso: string | undefined): SafeHtml => (iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html``);
const outcomeTag = (ok: boolean, text: string): SafeHtml => html`<span class="tag ${ok ? 'good' : 'bad'}">${text}</span>`;
const hidden = (session: PortalSession): SafeHtml => html`<input type="hidden" name="_csrf" value="${session.csrfToken}">`;
/** The one row of an empty table, saying why it is empty (an empty body reads as a page that failed to load). */
const emptyRow = (columns: number, text: string): SafeHtml => html`<tr><td colspan="${columns}" class="muted">${text}</td></tr>`;
/** A list of permissions, one per line, or a dash for none. */
const lines = (items: readonly string[]): SafeHtml => (items.length ? html`${items.map((item, i) => html`${i ? html`<br>` : ''}${item}`)}` : html`<span class="muted">—</span>`);
const notice = (message: string | undefined): SafeHtml => (message ? html`<div class="notice" role="status">${message}</div>` : html``);

/** Overview: what the portal shows, the flow diagram, and counts that matter now. */
export function overviewPage(data: PortalData): PageContent {
  const shared = data.sharedIdentity ?? 'id-keyless';
  const hosts = data.directory.hosts().filter((h) => h.userAssigned.some((i) => i.name === shared)).map((h) => h.name);
  const hour = new Date(Date.now() - 3_600_000).toISOString();
  const firing = data.alerts?.engine.list({ state: 'Fired', limit: 1000 }).length ?? 0;
  const denied = data.auditLog.authorizations({ since: hour, where: { decision: 'denied' }, limit: 1000 }).length;
  const failedSignIns = data.auditLog.signIns({ since: hour, where: { outcome: 'failure' }, limit: 1000 }).length;
  const assignments = data.roleAssignments.all().length;
  const deadLettered = data.serviceBus?.deadLetterCounts().reduce((sum, row) => sum + row.count, 0);
  return {
    title: 'Overview',
    body: html`<p>The local Azure's portal: its identities, role assignments, sign-in and authorization logs, alerts, Service Bus entities and the health of the running services.</p>
<section aria-labelledby="now"><h2 id="now">Right now</h2>
<div class="cards" id="overview-cards" data-live="alert authorization sign-in assignment">
  <div class="card"><strong>${firing}</strong> ${noun(firing, 'alert')} firing <a href="/alerts">Alerts</a></div>
  <div class="card"><strong>${denied}</strong> denied ${noun(denied, 'authorization')} in the last hour <a href="/logs?outcome=failure&amp;since=1h">Logs</a></div>
  <div class="card"><strong>${failedSignIns}</strong> failed ${noun(failedSignIns, 'sign-in')} in the last hour <a href="/logs?outcome=failure&amp;since=1h">Logs</a></div>
  <div class="card"><strong>${assignments}</strong> role ${noun(assignments, 'assignment')} <a href="/iam">Access control</a></div>
  ${deadLettered === undefined ? '' : html`<div class="card"><strong>${deadLettered}</strong> dead-lettered ${noun(deadLettered, 'message')} <a href="/servicebus">Service Bus</a></div>`}
</div></section>
<section aria-labelledby="flow"><h2 id="flow">How access works</h2>${flowDiagram(shared, hosts)}</section>`,
  };
}

/** Identities: user-assigned identities with the hosts that use each; hosts with their system-assigned identity on or off. */
export function identitiesPage(data: PortalData): PageContent {
  const hosts = data.directory.hosts();
  const identities = data.directory.identities().filter((i) => i.kind === 'userAssigned');
  return {
    title: 'Identities',
    body: html`<p>Managed identities come in two types. A <strong>user-assigned</strong> identity is a resource of its own: several hosts can use it, and it outlives them.
A <strong>system-assigned</strong> identity belongs to one host: it is created when it is turned on and deleted with the host.</p>
<h2 id="user-assigned">User-assigned identities</h2>
<table aria-labelledby="user-assigned"><thead><tr><th scope="col">Name</th><th scope="col">Client id</th><th scope="col">Principal (object) id</th><th scope="col">Used by</th></tr></thead><tbody>
${identities.map((identity) => {
  const users = hosts.filter((h) => h.userAssigned.some((u) => u.principalId === identity.principalId)).map((h) => h.name);
  return html`<tr><th scope="row">${identity.name}</th><td class="mono">${identity.clientId}</td><td class="mono">${identity.principalId}</td>
<td>${users.length > 1 ? html`<strong>Shared by ${users.length} hosts:</strong> ${users.join(', ')}` : users.length === 1 ? html`1 host: ${users[0]}` : html`<span class="muted">no host</span>`}</td></tr>`;
})}</tbody></table>
<h2 id="hosts">Hosts</h2>
<table aria-labelledby="hosts"><thead><tr><th scope="col">Host</th><th scope="col">System-assigned identity</th><th scope="col">User-assigned identities</th></tr></thead><tbody>
${hosts.map(
  (host) => html`<tr><th scope="row">${host.name}</th>
<td>${host.systemAssigned ? html`<span class="tag good">On</span> principal id <span class="mono">${host.systemAssigned.principalId}</span>` : html`<span class="tag muted">Off</span>`}</td>
<td>${host.userAssigned.length ? host.userAssigned.map((u) => u.name).join(', ') : html`<span class="muted">none</span>`}</td></tr>`,
)}</tbody></table>`,
  };
}

/** A scope the IAM blade can be opened at, with a label a reader understands. */
export interface ScopeOption {
  id: string;
  label: string;
}

/** Every scope of the local subscription: subscription, resource group, resources, Service Bus entities. */
export function scopeOptions(data: PortalData): ScopeOption[] {
  const { directory } = data;
  const options: ScopeOption[] = [
    { id: `/subscriptions/${directory.subscriptionId}`, label: `Subscription ${directory.subscriptionId}` },
    { id: directory.resourceGroupId, label: `Resource group ${directory.resourceGroupId.split('/').pop()}` },
    ...directory.resources().map((r) => ({ id: r.id, label: `${r.name} (${r.type})` })),
  ];
  if (data.serviceBus) {
    const namespace = directory.resourceId('serviceBus');
    for (const entity of data.serviceBus.entities()) {
      const [topic, , subscription] = entity.name.split('/');
      const id = entity.type === 'queue' ? `${namespace}/queues/${entity.name}` : entity.type === 'topic' ? `${namespace}/topics/${entity.name}` : `${namespace}/topics/${topic}/subscriptions/${subscription}`;
      options.push({ id, label: `${entity.type} ${entity.type === 'subscription' ? `${topic}/${subscription}` : entity.name}` });
    }
  }
  return options;
}

/** An add-assignment form the portal refused: why, and what the user chose (shown again, so nothing is lost). */
export interface RefusedAssignment {
  error: SafeHtml;
  roleId?: string;
  principalId?: string;
}

/**
 * IAM at a scope: assignments (here, inherited, at child scopes), role definitions, add and remove, and "check
 * access". `done` says what the last change did; `refused` is an add form sent back with its error.
 */
export function iamPage(data: PortalData, session: PortalSession, query: URLSearchParams, done?: string, refused?: RefusedAssignment): PageContent {
  const scopes = scopeOptions(data);
  const asked = query.get('scope');
  const found = scopes.find((s) => s.id.toLowerCase() === (asked ?? '').toLowerCase());
  const scope = found ?? scopes[1]!;
  const labelOf = (id: string): string => scopes.find((s) => s.id.toLowerCase() === id.toLowerCase())?.label ?? id;
  const rows = data.roleAssignments
    .all()
    .map((a) => ({ a, where: scopeContains(a.scope, scope.id) ? (a.scope.toLowerCase() === scope.id.toLowerCase() ? 'here' : 'inherited') : scopeContains(scope.id, a.scope) ? 'child' : undefined }))
    .filter((row): row is { a: RoleAssignment; where: 'here' | 'inherited' | 'child' } => row.where !== undefined);
  const principals = principalOptions(data);
  const name = (principalId: string): string => principals.find((p) => p.id === principalId)?.label ?? principalId;
  // As Azure lists them: this scope's first, then inherited, then below; by role and principal within each.
  const order = { here: 0, inherited: 1, child: 2 } as const;
  rows.sort((x, y) => order[x.where] - order[y.where] || x.a.roleDefinitionName.localeCompare(y.a.roleDefinitionName) || name(x.a.principalId).localeCompare(name(y.a.principalId)) || x.a.scope.localeCompare(y.a.scope));
  // Only a principal the list offers: an id a link made up would be checked (all "Not granted") and echoed in the caption.
  const askedPrincipal = query.get('principal');
  const checkPrincipal = principals.find((p) => p.id === askedPrincipal)?.id;
  const checked = checkPrincipal ? effectiveDataActions(checkPrincipal, scope.id, data.roleAssignments.all()) : undefined;
  const whereText = { here: 'This scope', inherited: 'Inherited', child: 'Child scope' } as const;
  const scopeSelect = (id: string, selected: string): SafeHtml =>
    html`<select id="${id}" name="scope">${scopes.map((s) => html`<option value="${s.id}"${s.id === selected ? html` selected` : ''}>${s.label}</option>`)}</select>`;
  const field = (id: string, label: string, control: SafeHtml): SafeHtml => html`<div class="field"><label for="${id}">${label}</label>${control}</div>`;
  const selected = (value: string, chosen: string | undefined): SafeHtml | '' => (value === chosen ? html` selected` : '');
  return {
    title: 'Access control (IAM)',
    body: html`${notice(done)}${asked && !found ? html`<div class="notice error" role="alert"><p>The scope this link asked for does not exist in this subscription (a deleted queue, or a mistyped id): showing the resource group instead.</p></div>` : ''}${refused ? html`<div class="notice error" role="alert" id="add-error"><p>${refused.error}</p></div>` : ''}
<form class="filters" method="get" action="/iam">${field('scope-picker', 'Scope', scopeSelect('scope-picker', scope.id))}<button type="submit">Show</button></form>
<p>Showing <strong>${scope.label}</strong> <span class="mono">${scope.id}</span>. An assignment applies at its scope and everything beneath it.</p>
<section aria-labelledby="assignments-heading"><h2 id="assignments-heading">Role assignments</h2>
<div id="assignments" data-live="assignment">
<table><caption>${count(rows.length, 'role assignment')} at, above or below this scope</caption>
<thead><tr><th scope="col">Role</th><th scope="col">Principal</th><th scope="col">Scope</th><th scope="col">Where</th><th scope="col">Source</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${rows.map(
  ({ a, where }) => html`<tr><td>${a.roleDefinitionName}</td><td>${name(a.principalId)}<br><span class="mono muted">${a.principalId}</span></td>
<td>${labelOf(a.scope)}<br><span class="mono muted">${a.scope}</span></td>
<td>${where === 'inherited' ? html`Inherited from ${labelOf(a.scope)}` : whereText[where]}</td><td>${a.purpose ?? a.source}</td>
<td>${where === 'inherited'
  ? // As in Azure's portal, an inherited assignment is removed where it is made: from here it would read as this scope's.
    html`<a class="actions" href="/iam?scope=${encodeURIComponent(a.scope)}">Manage at ${labelOf(a.scope)}</a>`
  : html`<form class="inline" method="get" action="/iam/assignments/remove"><input type="hidden" name="assignmentId" value="${a.id}"><input type="hidden" name="scope" value="${scope.id}">
<button class="danger" type="submit" aria-label="Remove ${a.roleDefinitionName} of ${name(a.principalId)} on ${labelOf(a.scope)}">Remove</button></form>`}</td></tr>`,
)}</tbody></table></div></section>
<section aria-labelledby="add-heading"><h2 id="add-heading">Add a role assignment</h2>
<form class="stack" method="post" action="/iam/assignments">${hidden(session)}
${field('add-role', 'Role', html`<select id="add-role" name="roleId" required>${builtInRoles.map((r) => html`<option value="${r.id}"${selected(r.id, refused?.roleId)}>${r.name}</option>`)}</select>`)}
${field('add-principal', 'Principal', html`<select id="add-principal" name="principalId" required${refused ? html` aria-describedby="add-error"` : ''}>${principals.map((p) => html`<option value="${p.id}"${selected(p.id, refused?.principalId)}>${p.label}</option>`)}</select>`)}
${field('add-scope', 'Scope', scopeSelect('add-scope', scope.id))}
<button type="submit">Add role assignment</button></form></section>
<section aria-labelledby="check-heading"><h2 id="check-heading">Check access</h2>
<form class="filters" method="get" action="/iam"><input type="hidden" name="scope" value="${scope.id}">
${field('check-principal', 'Principal to check', html`<select id="check-principal" name="principal">${principals.map((p) => html`<option value="${p.id}"${p.id === checkPrincipal ? html` selected` : ''}>${p.label}</option>`)}</select>`)}
<button type="submit">Check access on this scope</button></form>
${askedPrincipal && !checkPrincipal ? html`<div class="notice error" role="alert" id="check-error"><p>The principal this link asked to check is not in the directory: choose one from the list.</p></div>` : ''}
${checked
  ? html`<table id="check-result"><caption>Effective data actions of ${name(checkPrincipal!)} on ${scope.label}</caption>
<thead><tr><th scope="col">Data action</th><th scope="col">Access</th><th scope="col">Granted by</th></tr></thead><tbody>
${checked.map(
  (row) => html`<tr><td class="mono">${row.dataAction}</td><td>${outcomeTag(row.granted, row.granted ? 'Allowed' : 'Not granted')}</td>
<td>${row.grantedBy.length ? row.grantedBy.map((g) => html`${g.role} at ${labelOf(g.scope)}${g.scope.toLowerCase() === scope.id.toLowerCase() ? '' : ' (inherited)'}<br>`) : html`<span class="muted">no assignment</span>`}</td></tr>`,
)}</tbody></table>`
  : ''}</section>
<section aria-labelledby="roles-heading"><h2 id="roles-heading">Role definitions</h2>
<table><caption>Built-in roles: what each grants on the control plane (actions) and on the data planes (data actions)</caption><thead><tr><th scope="col">Role</th><th scope="col">Id</th><th scope="col">Actions</th><th scope="col">Data actions</th><th scope="col">Not granted</th></tr></thead><tbody>
${builtInRoles.map(
  (r) => html`<tr><th scope="row">${r.name}</th><td class="mono guid">${r.id}</td><td class="mono">${lines(r.actions)}</td><td class="mono">${lines(r.dataActions)}</td><td class="mono">${lines([...r.notActions, ...r.notDataActions])}</td></tr>`,
)}
</tbody></table></section>`,
  };
}

/** How the pages name a principal: `id-keyless (user-assigned)`, `reader@… (user)`, else its object id. */
export function principalLabel(data: PortalData, principalId: string): string {
  return principalOptions(data).find((p) => p.id === principalId)?.label ?? principalId;
}

/** Principals an assignment can name: every managed identity, every user of the tenant, and whoever else holds one. */
function principalOptions(data: PortalData): { id: string; label: string }[] {
  const identities = data.directory.identities().map((i) => ({ id: i.principalId, label: `${i.name} (${i.kind === 'userAssigned' ? 'user-assigned' : 'system-assigned'})` }));
  const users = data.directory.users().map((u) => ({ id: u.principalId, label: `${u.userPrincipalName} (user)` }));
  const known = [...identities, ...users];
  const others = [...new Set(data.roleAssignments.all().map((a) => a.principalId))]
    .filter((id) => !known.some((i) => i.id === id))
    .map((id) => ({ id, label: data.authority.principalName?.(id) ?? id }));
  return [...known, ...others];
}

/** The log filters, from the query string. */
export interface LogFilters {
  identity?: string;
  resource?: string;
  outcome?: 'success' | 'failure';
  since?: '15m' | '1h' | '24h' | '7d';
}

const sinceMs = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
/** Token audiences of the resources, to filter sign-ins by resource. */
const audiencesOf: Record<string, readonly string[]> = {
  serviceBus: ['https://servicebus.azure.net', 'https://servicebus.azure.net/'],
  openAi: ['https://cognitiveservices.azure.com', 'https://cognitiveservices.azure.com/'],
  vision: ['https://cognitiveservices.azure.com', 'https://cognitiveservices.azure.com/'],
  keyVault: ['https://vault.azure.net', 'https://vault.azure.net/'],
  appInsights: ['https://monitor.azure.com', 'https://monitor.azure.com/'],
  postgres: ['https://ossrdbms-aad.database.windows.net', 'https://ossrdbms-aad.database.windows.net/'],
  // The control plane's decisions are logged under `management`; its tokens are for ARM's audiences.
  management: managementAudiences,
};

export function readLogFilters(query: URLSearchParams): LogFilters {
  const value = (key: string) => query.get(key) || undefined;
  const outcome = value('outcome');
  const since = value('since');
  return {
    ...(value('identity') ? { identity: value('identity')! } : {}),
    ...(value('resource') ? { resource: value('resource')! } : {}),
    ...(outcome === 'success' || outcome === 'failure' ? { outcome } : {}),
    ...(since && since in sinceMs ? { since: since as LogFilters['since'] } : {}),
  };
}

/** How many rows of each log the page shows: 50, and on request ("Show more") 200, then 1000 (the log API's own cap). */
const logPageSizes = [50, 200, 1000] as const;

/** The logs page's parameters with a fixed set of choices: what the notice calls each, and what the page shows without it. */
const unofferedLogFilters = [
  { key: 'outcome', name: 'outcome', instead: 'every outcome' },
  { key: 'since', name: 'time', instead: 'any time' },
  { key: 'rows', name: 'row count', instead: `${logPageSizes[0]} rows per log` },
] as const;

/** Words joined as a sentence lists them: `a`, `a and b`, `a, b and c`. */
function listed(words: readonly string[]): string {
  return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/**
 * When a log filled the page: a link to the same filters with the next page size, or, at the largest, where the rest
 * is. (A size, not an "older than" cursor: rows logged in the same millisecond would fall between two pages.)
 */
function olderRows(query: URLSearchParams, limit: number, shown: number): SafeHtml | '' {
  if (shown < limit) return '';
  const next = logPageSizes.find((size) => size > limit);
  if (!next) return html`<p id="more-rows">These are the newest ${limit}; narrow the filters (identity, resource, outcome, time) to find older entries.</p>`;
  const more = new URLSearchParams(query);
  more.set('rows', String(next));
  return html`<p id="more-rows">A log has more entries than shown. <a href="/logs?${more.toString()}">Show up to ${next} rows per log</a></p>`;
}

/** Sign-in logs and authorization decisions, filtered, newest first, updated live. */
export function logsPage(data: PortalData, query: URLSearchParams): PageContent {
  const identityOptions: [string, string][] = [
    ...data.directory.identities().map((i) => [i.name, i.name] as [string, string]),
    ...data.directory.users().map((u) => [u.userPrincipalName, `${u.userPrincipalName} (user)`] as [string, string]),
  ];
  const resourceOptions: [string, string][] = [...data.directory.resources().map((r) => [r.key, r.name] as [string, string]), ['management', 'Control plane (ARM, CLI, portal)']];
  // A filter the lists cannot show (a stale link, a mistyped one) would empty the tables under a form reading "All",
  // and one the page has no choice for (`since=bogus`) would be ignored without a word: either is dropped and the page
  // says so, without repeating what the link said.
  const asked = readLogFilters(query);
  const unknown = (['identity', 'resource'] as const).filter((key) => asked[key] !== undefined && !(key === 'identity' ? identityOptions : resourceOptions).some(([value]) => value === asked[key]));
  const filters: LogFilters = Object.fromEntries(Object.entries(asked).filter(([key]) => !(unknown as readonly string[]).includes(key)));
  const limit = logPageSizes.find((size) => String(size) === query.get('rows')) ?? logPageSizes[0];
  const unoffered = unofferedLogFilters.filter(({ key }) => query.get(key) && (key === 'rows' ? String(limit) !== query.get(key) : asked[key] === undefined));
  const used = new URLSearchParams(query);
  for (const key of [...unknown, ...unoffered.map((filter) => filter.key)]) used.delete(key);
  const since = filters.since ? new Date(Date.now() - sinceMs[filters.since]).toISOString() : undefined;
  const signIns = data.auditLog.signIns({
    limit,
    ...(since ? { since } : {}),
    where: {
      ...(filters.identity ? { identity: filters.identity } : {}),
      ...(filters.resource ? { resource: audiencesOf[filters.resource] ?? [filters.resource] } : {}),
      ...(filters.outcome ? { outcome: filters.outcome } : {}),
    },
  });
  const decisions = data.auditLog.authorizations({
    limit,
    ...(since ? { since } : {}),
    where: {
      ...(filters.identity ? { identity: filters.identity } : {}),
      ...(filters.resource ? { resource: filters.resource } : {}),
      ...(filters.outcome ? { decision: filters.outcome === 'success' ? 'allowed' : 'denied' } : {}),
    },
  });
  // Refused before anyone was known, and always a failure: an identity or a success filter leaves none; a resource
  // filter keeps those of its listener.
  const refusals =
    filters.identity || filters.outcome === 'success'
      ? []
      : data.auditLog.refusals({ limit, ...(since ? { since } : {}), ...(filters.resource ? { where: { 'listener.name': filters.resource } } : {}) });
  const filtered = Object.keys(filters).length > 0;
  const select = (id: string, label: string, name: string, options: [string, string][], selected: string | undefined) =>
    html`<div class="field"><label for="${id}">${label}</label><select id="${id}" name="${name}"><option value="">All</option>${options.map(([value, text]) => html`<option value="${value}"${value === selected ? html` selected` : ''}>${text}</option>`)}</select></div>`;
  return {
    title: 'Sign-in logs and authorization decisions',
    body: html`<form class="filters" method="get" action="/logs" aria-label="Filters">
${select('f-identity', 'Identity', 'identity', identityOptions, filters.identity)}
${select('f-resource', 'Resource', 'resource', resourceOptions, filters.resource)}
${select('f-outcome', 'Outcome', 'outcome', [['success', 'Success / allowed'], ['failure', 'Failure / denied']], filters.outcome)}
${select('f-since', 'Time', 'since', [['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days']], filters.since)}
<button type="submit">Apply filters</button> <a href="/logs">Clear</a></form>
${unknown.length || unoffered.length
  ? html`<div class="notice error" role="alert" id="filter-error">${unknown.length ? html`<p>The ${listed(unknown)} this link asked for ${unknown.length === 1 ? 'is' : 'are'} not in the directory: showing every ${unknown.join(' and every ')} instead.</p>` : ''}${
      unoffered.length ? html`<p>The ${listed(unoffered.map((f) => f.name))} this link asked for ${unoffered.length === 1 ? 'is' : 'are'} not among the page's choices: showing ${listed(unoffered.map((f) => f.instead))} instead.</p>` : ''
    }</div>`
  : ''}
<p class="muted">Newest first, ${limit} rows at most per log. New entries appear as they happen.</p>
${olderRows(used, limit, Math.max(signIns.length, decisions.length, refusals.length))}
<section aria-labelledby="signins-heading"><h2 id="signins-heading">Sign-ins (token requests and database logins)</h2>
<div id="sign-ins" data-live="sign-in">
<table><caption>${count(signIns.length, 'sign-in')}</caption><thead><tr><th scope="col">Time</th><th scope="col">Host</th><th scope="col">Identity</th><th scope="col">Resource</th><th scope="col">Outcome</th><th scope="col">Failure reason</th></tr></thead><tbody>
${signIns.length ? '' : emptyRow(6, filtered ? 'No sign-in matches these filters.' : 'No sign-in yet.')}
${signIns.map((r: SignInRecord) => html`<tr><td>${time(r.time)}</td><td>${r.host ?? (r.endpoint === 'token' ? 'token endpoint (user)' : r.endpoint === 'postgres' ? `PostgreSQL login as ${r.user ?? '?'} from ${r.client ?? '?'}` : '—')}</td><td>${r.identity ?? '—'}</td><td class="mono">${r.resource ?? '—'}</td><td>${outcomeTag(r.outcome === 'success', r.outcome)}</td><td>${r.reason ?? ''}</td></tr>`)}
</tbody></table></div></section>
<section aria-labelledby="decisions-heading"><h2 id="decisions-heading">Authorization decisions</h2>
<div id="decisions" data-live="authorization">
<table><caption>${count(decisions.length, 'decision')}</caption><thead><tr><th scope="col">Time</th><th scope="col">Resource</th><th scope="col">Identity</th><th scope="col">Action or data action</th><th scope="col">Scope</th><th scope="col">Decision</th><th scope="col">Granted by, or why not</th></tr></thead><tbody>
${decisions.length ? '' : emptyRow(7, filtered ? 'No decision matches these filters.' : 'No decision yet.')}
${decisions.map(
  (r: AuthorizationRecord) => {
    const who = r.identity ?? (r.principalId || 'an unauthenticated caller');
    const what = r.action ?? r.dataAction;
    const why = r.reason ?? `no role assignment of ${who} grants ${what ?? 'it'} on this scope`;
    return html`<tr><td>${time(r.time)}</td><td>${r.resource}</td><td>${who}</td><td class="mono">${what ?? '—'}</td><td class="mono">${r.scope}</td>
<td>${outcomeTag(r.decision === 'allowed', r.decision)}</td><td>${r.decision === 'allowed' ? (r.role ?? '') : `${why}${r.operation ? ` (${r.operation})` : ''}`}</td></tr>`;
  },
)}
</tbody></table></div></section>
<section aria-labelledby="refusals-heading"><h2 id="refusals-heading">Requests refused before any route</h2>
<p class="muted">Node's HTTP parser refused these (malformed, headers too large, too slow), so no route, authorization or sign-in saw them. Each listener logs at most 60 a minute and counts the rest.</p>
<div id="refusals" data-live="refusal">
<table><caption>${count(refusals.length, 'refused request')}</caption><thead><tr><th scope="col">Time</th><th scope="col">Listener</th><th scope="col">Client</th><th scope="col">Status</th><th scope="col">Why</th><th scope="col">Node's code</th><th scope="col">Not logged before</th></tr></thead><tbody>
${refusals.length ? '' : emptyRow(7, filtered ? 'No refused request matches these filters.' : 'No refused request yet.')}
${refusals.map(
  (r: RefusalRecord) =>
    html`<tr><td>${time(r.time)}</td><td>${r.listener.name} <span class="mono">${endpointOf(r.listener.address, r.listener.port)}</span></td><td class="mono">${endpointOf(r.client.address, r.client.port)}</td><td>${outcomeTag(false, String(r.status))}</td><td>${r.kind}</td><td class="mono">${r.code}</td><td>${r.notLoggedBefore ?? ''}</td></tr>`,
)}
</tbody></table></div></section>`,
  };
}

/** Alerts: firing and resolved, with what fired them, and the rules. */
export function alertsPage(data: PortalData): PageContent {
  const engine = data.alerts?.engine;
  const firing = engine?.list({ state: 'Fired', limit: 200 }) ?? [];
  const resolved = engine?.list({ state: 'Resolved', limit: 50 }) ?? [];
  const deliveries = (alert: Alert): string => {
    const list = data.alerts?.webhook?.deliveries(alert.id) ?? [];
    return list.length ? list.map((d) => `${d.monitorCondition}: ${d.state}${d.attempts > 1 ? ` (${d.attempts} attempts)` : ''}`).join('; ') : data.alerts?.webhook ? 'none yet' : 'no webhook configured';
  };
  const table = (id: string, caption: string, alerts: Alert[], resolvedColumns: boolean) =>
    html`<table id="${id}"><caption>${caption}</caption><thead><tr><th scope="col">Severity</th><th scope="col">Rule</th><th scope="col">What fired it</th><th scope="col">Fired</th>${resolvedColumns ? html`<th scope="col">Resolved</th>` : html`<th scope="col">Events</th>`}<th scope="col">Webhook</th></tr></thead><tbody>
${alerts.map(
  (a) => html`<tr><td><span class="tag ${a.severity === 'Sev0' || a.severity === 'Sev1' ? 'bad' : 'warn'}">${a.severity}</span></td><td>${a.ruleName}</td><td>${a.summary}</td><td>${time(a.firedAt)}</td>
${resolvedColumns ? html`<td>${time(a.resolvedAt)}<br>${a.resolution ?? ''}</td>` : html`<td>${a.count}</td>`}<td>${deliveries(a)}</td></tr>`,
)}</tbody></table>`;
  return {
    title: 'Alerts',
    body: html`<div id="alert-tables" data-live="alert">
<h2 id="firing-heading">Firing</h2>${firing.length ? table('firing', `${count(firing.length, 'alert')} firing`, firing, false) : html`<p id="firing">No alert is firing.</p>`}
<h2 id="resolved-heading">Resolved</h2>${resolved.length ? table('resolved', resolved.length === 1 ? 'The last resolved alert' : `The last ${resolved.length} resolved alerts`, resolved, true) : html`<p id="resolved">No alert has resolved yet.</p>`}
</div>
<h2 id="rules-heading">Rules</h2>
<table><caption>What each rule watches (the same conditions as the Azure Monitor rules in infra/)</caption><thead><tr><th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">Signal</th><th scope="col">Condition</th><th scope="col">Fix</th></tr></thead><tbody>
${Object.values(alertRules).map((r) => html`<tr><th scope="row">${r.name}</th><td>${r.severity}</td><td>${r.signalType}</td><td>${r.description}</td><td>${r.fix}</td></tr>`)}
</tbody></table>`,
  };
}

/**
 * Service Bus: every entity with the message counts Azure's portal shows (Active, Scheduled, Dead-letter, Transfer,
 * Transfer dead-letter: the management API's runtime properties, ARM's `countDetails` in Azure, so the views agree), how many
 * of the active ones are deferred or locked by a receiver, and a link to peek into each dead-letter queue.
 */
export function serviceBusPage(data: PortalData, query: URLSearchParams = new URLSearchParams()): PageContent {
  if (!data.serviceBus) return { title: 'Service Bus', body: html`<p>Service Bus does not run in this local Azure.</p>` };
  const status = data.serviceBus.status();
  const all = data.serviceBus.entities();
  // A namespace can hold many entities: the name filter keeps the one the operator looks for on screen. Its text is
  // shown only in the search box, never in the page's own sentences (a link must not put words in the portal's mouth).
  const filter = (query.get('filter') ?? '').trim();
  const rows = filter ? all.filter((r) => r.name.toLowerCase().includes(filter.toLowerCase())) : all;
  const cell = (value: number, bad = false): SafeHtml => html`<td>${bad && value ? html`<span class="bad">${value}</span>` : value}</td>`;
  // A topic holds no message itself: its messages are counted in its subscriptions' rows.
  const none = html`<td class="muted">—</td>`;
  const ofActive = (r: (typeof rows)[number]): SafeHtml | '' => {
    const parts = [r.deferred ? `${r.deferred} deferred` : '', r.locked ? `${r.locked} locked` : ''].filter(Boolean);
    return parts.length ? html`<br><span class="muted">of which ${parts.join(', ')}</span>` : '';
  };
  return {
    title: 'Service Bus',
    body: html`<p>Namespace <span class="mono">${status.fullyQualifiedNamespace}</span> (<span class="mono">${status.resourceId}</span>), ${count(status.connections, 'open connection')}.</p>
<form class="filters" method="get" action="/servicebus" role="search"><div class="field"><label for="entity-filter">Filter by name</label><input id="entity-filter" type="search" name="filter" value="${filter}"></div><button type="submit">Filter</button>${filter ? html` <a href="/servicebus">Clear</a>` : ''}</form>
<div id="entities" data-live="alert">
${filter && !rows.length ? html`<p id="no-entities">No queue, topic or subscription name contains the filter's text.</p>` : ''}
<table><caption>${filter ? `${rows.length} of ${all.length} entities match the filter` : `${count(status.queues, 'queue')}, ${count(status.topics, 'topic')} and ${count(status.subscriptions, 'subscription')}`}: message counts as Service Bus reports them (Active includes deferred messages and those a receiver holds locked)</caption>
<thead><tr><th scope="col">Entity</th><th scope="col">Type</th><th scope="col">Active</th><th scope="col">Scheduled</th><th scope="col">Dead-letter</th><th scope="col">Transfer</th><th scope="col">Transfer dead-letter</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${rows.map((r) => {
  const c = r.countDetails;
  return html`<tr><th scope="row" class="name">${r.name}</th><td>${r.type}</td>${r.type === 'topic'
    ? html`${none}${cell(c.scheduled)}${none}${none}${none}<td></td>`
    : html`<td>${c.active}${ofActive(r)}</td>${cell(c.scheduled)}${cell(c.deadLetter, true)}${cell(c.transfer)}${cell(c.transferDeadLetter, true)}
<td class="actions"><a href="${subQueueHref(r.name, 'active')}">Peek messages<span class="visually-hidden"> of ${r.name}</span></a> · <a href="${subQueueHref(r.name, 'deadletter')}">Peek dead letters<span class="visually-hidden"> of ${r.name}</span></a></td>`}</tr>`;
})}</tbody></table></div>`,
  };
}

/** The two parts of a queue or subscription the portal shows and purges: its messages, and its dead-letter queue. */
export type SubQueue = 'active' | 'deadletter';

/** Each part's page, and how the pages name the part and its messages. */
const subQueuePages = {
  active: { path: '/servicebus/messages', tab: 'Messages', noun: 'message' },
  deadletter: { path: '/servicebus/deadletters', tab: 'Dead letters', noun: 'dead-lettered message' },
} as const satisfies Record<SubQueue, { path: string; tab: string; noun: string }>;

/** `active` or `deadletter` from a query or form value; anything else is no part. */
export function subQueueFrom(value: string | null): SubQueue | undefined {
  return value === 'active' || value === 'deadletter' ? value : undefined;
}

/** The address of an entity's messages page (`active`) or dead-letter page, from sequence number `from` on. */
export function subQueueHref(entity: string, subQueue: SubQueue, from = 0): string {
  return `${subQueuePages[subQueue].path}?entity=${encodeURIComponent(entity)}${from ? `&from=${from}` : ''}`;
}

/** What a messages page shows: a page of one part's messages, from sequence number `from` on, and both parts' totals. */
export interface MessagesView {
  entity: string;
  subQueue: SubQueue;
  /** At most {@link messagesPageSize}, peeked. */
  messages: MessageRow[];
  /** How many messages each part holds now, in every state. */
  totals: Record<SubQueue, number>;
  /** How many of the shown part's messages a receiver holds locked now: a purge keeps them, as Azure's does. */
  locked: number;
  /** On the dead-letter page: how many a resubmit would move back now, and why the others stay. */
  resubmit?: ResubmitCounts;
  from: number;
  /** What the last change did (the session's notice). */
  done?: string;
}

/**
 * One part of a queue or subscription: tabs for its messages and its dead-letter queue with their counts, the
 * messages 100 at a time, and what can be done with them — purge both, resubmit dead letters, each button naming what
 * it takes, or a sentence saying why it would take none (or, when the part is empty, a sentence saying so).
 */
export function messagesPage(view: MessagesView): PageContent {
  const { entity, subQueue, messages, totals, locked, resubmit: resubmitCounts, from, done } = view;
  const total = totals[subQueue];
  const { noun: what } = subQueuePages[subQueue];
  const deadLetter = subQueue === 'deadletter';
  const last = messages.at(-1)?.sequenceNumber;
  const link = (sequence: number): string => subQueueHref(entity, subQueue, sequence);
  // Pages go by sequence number (peek's own cursor), so no message falls between two pages.
  const pages = html`${from ? html`<a href="${link(0)}">First page</a>` : ''}${from && messages.length === messagesPageSize ? ' · ' : ''}${
    messages.length === messagesPageSize && last !== undefined ? html`<a href="${link(last + 1)}">Next ${messagesPageSize}</a>` : ''
  }`;
  const caption = from
    ? `${count(messages.length, what)} from sequence number ${from}, of ${total}`
    : total > messages.length
      ? `The first ${messages.length} of ${total} ${what}s`
      : count(total, what);
  const tabs = html`<nav class="tabs" aria-label="Parts of ${entity}"><ul>${(['active', 'deadletter'] as const).map(
    (part) => html`<li><a href="${subQueueHref(entity, part)}"${part === subQueue ? html` aria-current="page"` : ''}>${subQueuePages[part].tab} (${totals[part]})</a></li>`,
  )}</ul></nav>`;
  const headings = deadLetter
    ? ['Sequence', 'Message id', 'Subject', 'Reason', 'Description', 'Enqueued', 'Delivery count', 'Body']
    : ['Sequence', 'Message id', 'Subject', 'Session', 'State', 'Enqueued', 'Delivery count', 'Body'];
  const row = (m: MessageRow): SafeHtml =>
    deadLetter
      ? html`<tr><td>${m.sequenceNumber}</td><td class="mono">${m.messageId ?? ''}</td><td>${m.subject ?? ''}</td><td>${m.deadLetterReason ?? ''}</td><td>${m.deadLetterErrorDescription ?? ''}</td><td>${time(m.enqueuedTime)}</td><td>${m.deliveryCount}</td><td class="mono">${m.body ?? ''}</td></tr>`
      : html`<tr><td>${m.sequenceNumber}</td><td class="mono">${m.messageId ?? ''}</td><td>${m.subject ?? ''}</td><td class="mono">${m.sessionId ?? ''}</td><td>${m.state}</td><td>${time(m.enqueuedTime)}</td><td>${m.deliveryCount}</td><td class="mono">${m.body ?? ''}</td></tr>`;
  // The button says what a purge deletes: not "all" while a receiver holds some locked (they stay), and no button
  // when every one is locked (it would delete none).
  const unlocked = total - locked;
  const them = locked ? (unlocked === 1 ? `the unlocked ${what}` : `the ${unlocked} unlocked ${what}s`) : total === 1 ? `the ${what}` : `all ${total} ${what}s`;
  const purge = unlocked
    ? html`<form method="get" action="/servicebus/purge"><input type="hidden" name="entity" value="${entity}"><input type="hidden" name="subqueue" value="${subQueue}"><button class="danger" type="submit">Purge ${them}<span class="visually-hidden"> of ${entity}</span></button></form>`
    : html`<p id="purge-all-locked">${total === 1 ? `The ${what} is` : `All ${total} ${what}s are`} locked by a receiver: a purge keeps locked messages, as Azure's does, so there is nothing to purge until the receiver settles or abandons ${total === 1 ? 'it' : 'them'}, or ${total === 1 ? 'its lock expires' : 'their locks expire'}.</p>`;
  // The same for a resubmit: messages a receiver holds locked, or without the session id the entity requires, stay.
  const resubmit = resubmitCounts?.resubmittable
    ? html`<form method="get" action="/servicebus/resubmit"><input type="hidden" name="entity" value="${entity}"><button type="submit">Resubmit ${resubmitTarget(resubmitCounts)} to ${entity}</button></form>`
    : resubmitCounts
      ? nothingToResubmit(entity, resubmitCounts)
      : '';
  return {
    title: deadLetter ? `Dead letters of ${entity}` : `Messages of ${entity}`,
    body: html`${notice(done)}<p><a href="/servicebus">Back to Service Bus</a></p>
${tabs}
${total
  ? html`${messages.length ? html`<table><caption>${caption} (peeked: nothing is locked or removed)</caption>
<thead><tr>${headings.map((heading) => html`<th scope="col">${heading}</th>`)}</tr></thead><tbody>
${messages.map(row)}</tbody></table>` : html`<p id="${deadLetter ? 'dead-letters' : 'messages'}-past-end">No ${what} from sequence number ${from} on.</p>`}
<p class="pages">${pages}</p>
<p class="muted" id="delivery-count-note">The delivery count is the one Service Bus reports: the deliveries that failed — abandoned by the receiver, or whose lock expired. ${
    deadLetter
      ? 'A message received once and dead-lettered by its receiver shows 0; one moved here after MaxDeliveryCount failed deliveries shows that number.'
      : 'A message no receiver has failed yet shows 0.'
  }</p>
<div class="message-actions">${resubmit}${purge}</div>`
  : deadLetter
    ? html`<p id="dead-letters-empty">The dead-letter queue of ${entity} is empty: there is no message to look at, resubmit or purge.</p>`
    : html`<p id="messages-empty">${entity} holds no message: there is none to look at or purge. Its dead-lettered messages are under Dead letters.</p>`}`,
  };
}

/** Which dead-lettered messages the resubmit button moves: "all 3 messages", or "the 2 messages that can go back". */
function resubmitTarget({ total, resubmittable }: ResubmitCounts): string {
  if (resubmittable === total) return total === 1 ? 'the message' : `all ${total} messages`;
  return resubmittable === 1 ? 'the message that can go back' : `the ${resubmittable} messages that can go back`;
}

/** In place of the resubmit button when every dead-lettered message stays: which ones, and why. */
function nothingToResubmit(entity: string, { total, locked, withoutSessionId }: ResubmitCounts): SafeHtml {
  const them = (n: number): string => (n === 1 ? 'it' : 'them');
  const untilSettled = (n: number): string => `until the receiver settles or abandons ${them(n)}, or ${n === 1 ? 'its lock expires' : 'their locks expire'}`;
  const all = (verb: 'is' | 'has'): string =>
    total === 1 ? `The dead-lettered message ${verb}` : `All ${total} dead-lettered messages ${verb === 'is' ? 'are' : 'have'}`;
  const why =
    locked === total
      ? `${all('is')} locked by a receiver: a resubmit leaves locked messages in the dead-letter queue, so there is nothing to resubmit ${untilSettled(total)}.`
      : withoutSessionId === total
        ? `${all('has')} no session id, which ${entity} requires (it is session-enabled), so there is nothing to resubmit: ${entity} would refuse ${them(total)}. Purge ${them(total)}, or receive ${them(total)} from the dead-letter queue and send ${them(total)} again with a session id.`
        : `None of the ${total} dead-lettered messages can go back to ${entity}: ${count(locked, 'message')} ${locked === 1 ? 'is' : 'are'} locked by a receiver (${untilSettled(locked)}), and ${count(withoutSessionId, 'message')} ${withoutSessionId === 1 ? 'has' : 'have'} no session id, which ${entity} requires.`;
  return html`<p id="resubmit-none">${why}</p>`;
}

/** Messages per page of a messages page. */
export const messagesPageSize = 100;

/** A destructive change the operator is asked to confirm: what it does, where the form posts, and where "No" goes. */
interface Confirmation {
  title: string;
  /** The question, in a warning. */
  question: SafeHtml;
  /** What exactly is affected (a table or a list). */
  details: SafeHtml;
  action: string;
  fields: Record<string, string>;
  confirm: string;
  cancel: { href: string; label: string };
}

/**
 * The confirmation step of a destructive change, as Azure's portal asks one ("Yes" / "No"): a page of its own, not a
 * script dialog, so it works without JavaScript under the strict CSP. Only "Yes" posts the change, with the session's
 * anti-forgery token, to the same verified form route as before; "No" is a link back and changes nothing.
 */
function confirmationPage(session: PortalSession, confirmation: Confirmation): PageContent {
  const { title, question, details, action, fields, confirm, cancel } = confirmation;
  return {
    title,
    body: html`<div class="notice caution"><p>${question}</p></div>
${details}
<form class="confirm" method="post" action="${action}">${hidden(session)}${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<button class="danger-solid" type="submit">${confirm}</button> <a class="button secondary" href="${cancel.href}">${cancel.label}</a></form>`,
  };
}

/**
 * "Remove role assignment": the assignment, who loses what where, and — when a service runs as the principal — that
 * its calls needing the role will be refused.
 */
export function removeAssignmentPage(data: PortalData, session: PortalSession, assignment: RoleAssignment, back: string): PageContent {
  const scopes = scopeOptions(data);
  const where = scopes.find((s) => s.id.toLowerCase() === assignment.scope.toLowerCase())?.label ?? assignment.scope;
  const who = principalLabel(data, assignment.principalId);
  const hosts = data.directory.hosts().filter((h) => h.userAssigned.some((u) => u.principalId === assignment.principalId) || h.systemAssigned?.principalId === assignment.principalId).map((h) => h.name);
  return confirmationPage(session, {
    title: 'Remove role assignment',
    question: html`Do you want to remove this role assignment? <strong>${who}</strong> loses <strong>${assignment.roleDefinitionName}</strong> on ${where} and everything beneath it.${
      hosts.length ? html` ${hosts.length === 1 ? 'The host' : 'The hosts'} ${hosts.join(', ')} ${hosts.length === 1 ? 'runs' : 'run'} as this identity: its calls that need the role will be refused (403, or 503 at the gateway) until it is assigned again.` : ''
    }`,
    details: html`${assignment.principalId === session.operator.principalId
      ? html`<div class="notice error" role="alert"><p><strong>This is your own role assignment.</strong> Once it is removed, what it grants is refused to you too — in this portal and the CLI — unless another assignment grants it; another Owner (or User Access Administrator) can assign it again.</p></div>`
      : ''}${reappliedBy[assignment.source] ? html`<p id="reapplied">${reappliedBy[assignment.source]!(data.home)}</p>` : ''}<table><caption>The role assignment to remove</caption><tbody>
<tr><th scope="row">Role</th><td>${assignment.roleDefinitionName}</td></tr>
<tr><th scope="row">Principal</th><td>${who}<br><span class="mono muted">${assignment.principalId}</span></td></tr>
<tr><th scope="row">Scope</th><td>${where}<br><span class="mono muted">${assignment.scope}</span></td></tr>
<tr><th scope="row">Source</th><td>${assignment.purpose ?? assignment.source}</td></tr>
</tbody></table>`,
    action: '/iam/assignments/delete',
    fields: { assignmentId: assignment.id, scope: back },
    confirm: 'Yes, remove',
    cancel: { href: `/iam?scope=${encodeURIComponent(back || assignment.scope)}`, label: 'No, keep it' },
  });
}

/** Where an assignment that is declared, not made, comes back from (the local Azure applies both at every start). */
const reappliedBy: Partial<Record<RoleAssignment['source'], (home: PortalData['home']) => string>> = {
  'access-file': (home) =>
    `This assignment is declared in the access file (infra/access.json): the next start of the local Azure, or \`${home.command('npm run -s local-azure -- role assignment reset')}\`, assigns it again, as a redeployment would in Azure.`,
  config: () => 'This assignment comes from the configuration of the local Azure (its users): its next start assigns it again.',
};

/**
 * "Resubmit dead-lettered messages": how many go back to which entity (all, or those that can now, with how many stay
 * and why), and what happens to them there.
 */
export function resubmitPage(session: PortalSession, entity: string, counts: ResubmitCounts): PageContent {
  const { total, resubmittable, locked, withoutSessionId } = counts;
  const back = `/servicebus/deadletters?entity=${encodeURIComponent(entity)}`;
  const one = resubmittable === 1;
  const which =
    resubmittable === total
      ? html`${one ? 'the dead-lettered message' : `all ${total} dead-lettered messages`} to <strong>${entity}</strong>`
      : html`the dead-lettered messages that can go back to <strong>${entity}</strong> (${count(resubmittable, 'message')} now)`;
  const staying = [locked ? `${count(locked, 'message')} locked by a receiver` : '', withoutSessionId ? `${count(withoutSessionId, 'message')} without a session id` : ''].filter(Boolean);
  return confirmationPage(session, {
    title: 'Resubmit dead-lettered messages',
    question: html`Do you want to resubmit ${which}? ${one ? 'It leaves' : 'They leave'} the dead-letter queue and ${one ? 'is' : 'are'} delivered to its receivers again: a message that failed for a reason that still holds will fail again.${
      staying.length ? ` The ${staying.join(' and the ')} ${total - resubmittable === 1 ? 'stays' : 'stay'}.` : ''
    }`,
    details: html`<p>Messages a receiver holds locked, and messages without the session id ${entity} requires, stay in the dead-letter queue.</p>`,
    action: '/servicebus/resubmit',
    fields: { entity },
    confirm: 'Yes, resubmit',
    cancel: { href: back, label: 'No, go back' },
  });
}

/**
 * "Purge messages": which entity, which of its parts (its messages, or its dead-letter queue — never both), how many
 * messages in which states as of `asOf`, and what becomes of them: all go but those a receiver holds locked, which
 * stay, as with Azure's purge. The form carries the count the purge would delete, so the result can say when it
 * deleted another number (messages that arrived, were unlocked, or left in between).
 */
export function purgePage(session: PortalSession, entity: string, subQueue: SubQueue, counts: SubQueueCounts, asOf: string): PageContent {
  const { total, locked, deferred, scheduled } = counts;
  const deadLetter = subQueue === 'deadletter';
  const { noun: what } = subQueuePages[subQueue];
  const doomed = total - locked;
  const one = doomed === 1;
  const of = deadLetter ? html`of the dead-letter queue of <strong>${entity}</strong>` : html`of <strong>${entity}</strong>`;
  const which = locked
    ? html`the ${what}s ${of} that no receiver holds locked (${count(doomed, what)} now)`
    : html`${one ? `the ${what}` : `all ${total} ${what}s`} ${of}`;
  const states = [locked ? `${locked} locked by a receiver (kept)` : '', deferred ? `${deferred} deferred` : '', scheduled ? `${scheduled} scheduled` : ''].filter(Boolean);
  return confirmationPage(session, {
    title: deadLetter ? 'Purge dead-lettered messages' : 'Purge messages',
    question: html`Do you want to purge ${which}? ${one ? 'It is' : 'They are'} deleted for good: no receiver gets ${one ? 'it' : 'them'}, and ${
      one ? 'it' : 'they'
    } cannot be resubmitted.${locked ? ` The ${count(locked, what)} locked by a receiver ${locked === 1 ? 'stays' : 'stay'}.` : ''} ${
      deadLetter ? `The messages of ${entity} itself stay.` : `Its dead-letter queue stays as it is.`
    }`,
    details: html`<table><caption>What ${deadLetter ? 'the dead-letter queue' : entity} holds, counted at ${time(asOf)}</caption><tbody>
<tr><th scope="row">Entity</th><td>${entity}</td></tr>
<tr><th scope="row">Messages</th><td>${deadLetter ? 'Its dead-letter queue' : 'Its messages (not its dead-letter queue)'}</td></tr>
<tr><th scope="row">How many</th><td id="purge-count">${count(total, what)}${states.length ? `, of which ${states.join(', ')}` : ''}</td></tr>
</tbody></table>
<p id="purge-arrivals">The purge deletes what ${deadLetter ? 'the dead-letter queue' : entity} holds when you answer Yes, as Azure's purge deletes what was enqueued before the call: messages that arrive in between go too, and the result says how many were purged.</p>
<p id="purge-locked">Scheduled and deferred messages are purged too. Messages a receiver holds locked stay, as with Azure's purge and the CLI's <code>servicebus purge</code>: their receiver can still complete, abandon or dead-letter them, and one it abandons (or whose lock expires) is available again.</p>`,
    action: '/servicebus/purge',
    fields: { entity, subqueue: subQueue, expected: String(doomed) },
    confirm: 'Yes, purge',
    cancel: { href: subQueueHref(entity, subQueue), label: 'No, go back' },
  });
}

/**
 * What a purge did, for the notice on the page it returns to: how many messages it deleted where, how many locked ones
 * it left, and, when the number deleted is not the one the confirmation showed (`expected`, when the form carried one),
 * why.
 */
export function purgedNotice(entity: string, subQueue: SubQueue, result: { purged: number; lockedKept: number }, expected: number | undefined): string {
  const { purged, lockedKept } = result;
  const where = subQueue === 'deadletter' ? `from the dead-letter queue of ${entity}` : `of ${entity}`;
  const since =
    expected === undefined || expected === purged
      ? ''
      : purged > expected
        ? ` (${purged - expected} of them arrived or ${purged - expected === 1 ? 'was' : 'were'} unlocked after the confirmation counted ${expected})`
        : ` (the confirmation counted ${expected}: the others were received, expired or moved in between)`;
  const kept = lockedKept ? `; kept ${count(lockedKept, 'message')} a receiver holds locked, as Azure's purge does` : '';
  return `Purged ${count(purged, 'message')} ${where}${since}${kept}.`;
}

/**
 * What a resubmit did, for the notice on the dead-letter page: how many messages went back, and of those that stayed,
 * why — by the reasons the resubmit itself counted, with a count each when both apply.
 */
export function resubmittedNotice(entity: string, result: Pick<ResubmitResult, 'resubmitted' | 'kept' | 'lockedKept' | 'withoutSessionIdKept'>): string {
  const { resubmitted, kept, lockedKept, withoutSessionIdKept } = result;
  const locked = 'locked by a receiver';
  const withoutSessionId = `without the session id ${entity} requires`;
  const why = !lockedKept ? withoutSessionId : !withoutSessionIdKept ? locked : `${lockedKept} ${locked}, ${withoutSessionIdKept} ${withoutSessionId}`;
  return `Resubmitted ${count(resubmitted, 'message')} to ${entity}${kept ? `; ${count(kept, 'message')} kept in the dead-letter queue (${why})` : ''}.`;
}

/** System: the health of every running service instance, from its /health/ready. */
export function systemPage(instances: InstanceHealth[] | undefined, file: string): PageContent {
  return {
    title: 'System',
    body: instances === undefined
      ? html`<p>No service instance is registered: the launcher (<code>npm start</code>) lists the instances it runs in <code>${file}</code>.</p>`
      : html`<table><caption>${count(instances.length, 'service instance')} (each one's <code>/health/ready</code>, asked now)</caption>
<thead><tr><th scope="col">Instance</th><th scope="col">Service</th><th scope="col">Address</th><th scope="col">Ready</th><th scope="col">Checks</th></tr></thead><tbody>
${instances.map(
  (i) => html`<tr><th scope="row">${i.name}</th><td>${i.service}</td><td class="mono">${i.url}</td><td>${outcomeTag(i.ready, i.ready ? 'Ready' : 'Not ready')} <span class="muted">${i.detail}</span></td>
<td>${Object.entries(i.checks).map(([name, status]) => html`${name}: <span class="${status === 'up' ? 'good' : 'bad'}">${status}</span><br>`)}</td></tr>`,
)}</tbody></table>`,
  };
}

/** The role definition a form names, if it is a built-in one. */
export function roleFromForm(id: string | undefined): ReturnType<typeof findRole> {
  return id ? findRole(id) : undefined;
}
