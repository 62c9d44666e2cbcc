/**
 * The portal's only static files: one style sheet and one small script (live updates), served from the portal's own
 * origin so the Content-Security-Policy can forbid everything else (no inline script or style, no external fonts or CDNs).
 */
export const portalAssets: Record<string, { type: string; body: string }> = {
  '/assets/portal.css': {
    type: 'text/css; charset=utf-8',
    body: `
:root { color-scheme: light; --ink: #1b1b1f; --muted: #4a4a55; --line: #c9c9d3; --accent: #0a4fa8; --bad: #a4262c; --good: #0b6a0b; --warn: #8a5300; --bg: #fff; --panel: #f4f5f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
.skip-link { position: absolute; left: -9999px; top: 0; background: #ffbf47; color: #000; padding: .5rem 1rem; z-index: 10; }
.skip-link:focus { left: 0; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #12233f; color: #fff; }
header.top a, header.top .who { color: #fff; }
header.top .brand { font-weight: 700; text-decoration: none; }
header.top form { margin-left: auto; }
nav.sections ul { display: flex; flex-wrap: wrap; gap: .2rem; list-style: none; margin: 0; padding: 0 1.2rem; background: var(--panel); border-bottom: 1px solid var(--line); }
nav.sections a { display: block; padding: .6rem .8rem; text-decoration: none; color: var(--ink); }
nav.sections a[aria-current="page"] { font-weight: 700; border-bottom: 3px solid var(--accent); }
nav.tabs ul { display: flex; gap: .2rem; list-style: none; margin: .4rem 0 .8rem; padding: 0; border-bottom: 1px solid var(--line); }
nav.tabs a { display: block; padding: .4rem .8rem; text-decoration: none; }
nav.tabs a[aria-current="page"] { font-weight: 700; color: var(--ink); border-bottom: 3px solid var(--accent); }
.message-actions { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
main { padding: 1rem 1.2rem 3rem; max-width: 90rem; }
h1 { font-size: 1.6rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
th { background: var(--panel); }
td.guid, td.actions { white-space: nowrap; }
th.name, td.name { overflow-wrap: anywhere; min-width: 10rem; }
code, .mono { font-family: ui-monospace, "Cascadia Mono", Consolas, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.tag { display: inline-block; padding: 0 .45rem; border-radius: .7rem; font-size: .82rem; font-weight: 600; border: 1px solid currentColor; }
.bad { color: var(--bad); } .good { color: var(--good); } .warn { color: var(--warn); } .muted { color: var(--muted); }
form.inline { display: inline; }
form.filters, form.stack { display: flex; flex-wrap: wrap; gap: .8rem; align-items: flex-end; margin: .5rem 0 1rem; padding: .8rem; background: var(--panel); border: 1px solid var(--line); }
div.field { display: flex; flex-direction: column; gap: .2rem; }
label { font-size: .88rem; font-weight: 600; }
select, input, button { font: inherit; padding: .3rem .5rem; border: 1px solid #767680; border-radius: 3px; background: #fff; color: var(--ink); }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
button.danger-solid { background: var(--bad); color: #fff; border-color: var(--bad); }
a.button { display: inline-block; font: inherit; padding: .3rem .5rem; border: 1px solid var(--accent); border-radius: 3px; text-decoration: none; }
a.button.secondary { background: #fff; color: var(--accent); }
form.confirm { display: flex; flex-wrap: wrap; gap: .8rem; align-items: center; margin: 1rem 0; }
.notice.caution { border-color: var(--warn); }
.notice { padding: .7rem 1rem; border-left: 4px solid var(--accent); background: var(--panel); margin: .8rem 0; }
.notice.error { border-color: var(--bad); }
figure.flow { margin: 1rem 0; max-width: 56rem; }
figure.flow svg { width: 100%; height: auto; }
figure.flow svg text { font: 13px system-ui, sans-serif; fill: var(--ink); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .8rem; }
.card { border: 1px solid var(--line); padding: .8rem; background: var(--panel); }
.card strong { display: block; font-size: 1.6rem; }
`,
  },
  // The tab's icon (else every page load asks for /favicon.ico and logs a 404 in the console).
  '/assets/favicon.svg': {
    type: 'image/svg+xml',
    body: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#12233f"/><circle cx="6" cy="8" r="3" fill="none" stroke="#fff" stroke-width="1.6"/><path d="M9 8h5M12 8v2.5" stroke="#fff" stroke-width="1.6"/></svg>',
  },
  '/assets/portal.js': {
    type: 'text/javascript; charset=utf-8',
    body: `// Live updates: the server pushes events (server-sent events); regions marked data-live="<kinds>" are
// re-rendered from the server when one of their kinds arrives, and a polite live region says what changed.
const regions = [...document.querySelectorAll('[data-live]')];
const status = document.getElementById('live-status');
if (regions.length && 'EventSource' in window) {
  const kinds = new Set(regions.flatMap((region) => region.dataset.live.split(' ')));
  const source = new EventSource('/events');
  let timer;
  let announce = '';
  const refresh = async () => {
    const response = await fetch(location.href, { credentials: 'same-origin' });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
    for (const region of regions) {
      const next = fresh.getElementById(region.id);
      if (next) region.replaceChildren(...next.childNodes);
    }
    if (status && announce) status.textContent = announce;
    announce = '';
  };
  for (const kind of kinds) {
    source.addEventListener(kind, (event) => {
      announce = JSON.parse(event.data).announce || announce;
      // At most one refresh per half second, however busy the logs are.
      timer ??= setTimeout(() => {
        timer = undefined;
        void refresh();
      }, 500);
    });
  }
}
`,
  },
};
