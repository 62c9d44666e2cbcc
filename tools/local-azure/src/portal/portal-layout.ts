import { html, type SafeHtml } from './html.js';
import type { PortalSession } from './portal-sessions.js';

/** The portal's sections, in navigation order. */
export const portalSections = [
  { path: '/', label: 'Overview' },
  { path: '/identities', label: 'Identities' },
  { path: '/iam', label: 'Access control (IAM)' },
  { path: '/logs', label: 'Sign-in logs' },
  { path: '/alerts', label: 'Alerts' },
  { path: '/servicebus', label: 'Service Bus' },
  { path: '/system', label: 'System' },
] as const;

export type PortalSectionPath = (typeof portalSections)[number]['path'];

/** A whole page: skip link, banner, navigation, main content, and the polite live region the script announces in. */
export function layout(options: { title: string; section?: PortalSectionPath; session?: PortalSession; body: SafeHtml }): string {
  const { title, section, session, body } = options;
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — Keyless local portal</title>
<link rel="stylesheet" href="/assets/portal.css">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<script type="module" src="/assets/portal.js"></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="top">
  <a class="brand" href="/">Keyless local portal</a>
  ${session ? html`<span class="who">Signed in as ${session.operator.name}</span>
  <form method="post" action="/signout"><input type="hidden" name="_csrf" value="${session.csrfToken}"><button class="secondary" type="submit">Sign out</button></form>` : ''}
</header>
${session
  ? html`<nav class="sections" aria-label="Portal sections"><ul>${portalSections.map(
      (s) => html`<li><a href="${s.path}"${s.path === section ? html` aria-current="page"` : ''}>${s.label}</a></li>`,
    )}</ul></nav>`
  : ''}
<main id="main" tabindex="-1">
<h1>${title}</h1>
${body}
</main>
<div id="live-status" class="visually-hidden" role="status" aria-live="polite"></div>
</body>
</html>`}`;
}

/**
 * The flow every call takes, as an inline SVG with a title, a description and a visible ordered list as its text
 * alternative: the identity asks Entra ID for a token, the resource checks the token and the role assignment.
 */
export function flowDiagram(identity: string, hosts: readonly string[]): SafeHtml {
  const box = (x: number, label: string, sub: string) => html`<g>
    <rect x="${x}" y="20" width="170" height="70" rx="8" fill="#f4f5f8" stroke="#0a4fa8" stroke-width="2"></rect>
    <text x="${x + 85}" y="50" text-anchor="middle" font-weight="700">${label}</text>
    <text x="${x + 85}" y="72" text-anchor="middle">${sub}</text></g>`;
  const arrow = (x: number) => html`<path d="M${x} 55 h36" stroke="#1b1b1f" stroke-width="2" marker-end="url(#arrow)"></path>`;
  return html`<figure class="flow" aria-labelledby="flow-caption">
<svg viewBox="0 0 820 110" role="img" aria-labelledby="flow-title flow-desc" focusable="false">
  <title id="flow-title">How a service reaches an Azure resource</title>
  <desc id="flow-desc">Four boxes joined by arrows: the managed identity ${identity}, Entra ID which issues its token, the role assignment, and the resource, which allows the call only when a role assignment grants the data action.</desc>
  <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#1b1b1f"></path></marker></defs>
  ${box(0, 'Managed identity', identity)}${arrow(172)}${box(212, 'Entra ID', 'issues a token')}${arrow(384)}${box(424, 'Role assignment', 'role at a scope')}${arrow(596)}${box(636, 'Resource', 'checks the data action')}
</svg>
<figcaption id="flow-caption">From identity to resource, step by step:
<ol>
  <li>A service on ${hosts.length ? hosts.join(', ') : 'a host'} runs as the managed identity <strong>${identity}</strong>; it holds no key.</li>
  <li>It asks the host's identity endpoint for a token; <strong>Entra ID</strong> signs one naming the identity (its object id) and the resource it is for.</li>
  <li>The resource verifies the token, then looks for a <strong>role assignment</strong> of that identity, at the resource or a scope above it, whose role grants the data action.</li>
  <li>The <strong>resource</strong> allows the call when one does, and refuses it (401/403, or a 503 at the gateway) when none does. Both decisions land in the logs.</li>
</ol></figcaption>
</figure>`;
}

/** A message page (sign-in refused, forbidden, not found), with the status the server sends. */
export function messagePage(title: string, message: SafeHtml | string, session?: PortalSession): string {
  return layout({ title, ...(session ? { session } : {}), body: html`<div class="notice error" role="alert"><p>${message}</p></div>` });
}
