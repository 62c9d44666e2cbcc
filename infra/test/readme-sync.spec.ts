import { readFileSync } from 'node:fs';
import { requiredGrants, scopePath, type AccessGrant } from '../src/index.js';
import { rbac } from './rbac-knowledge.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const { entries, identity, databasePrincipals = [] } = rbac.loadAccessFile(new URL('../access.json', import.meta.url).pathname);

/** The README table row of one access.json entry. */
function row(grant: AccessGrant, i: number): string {
  const path = scopePath(grant);
  return `| ${i + 1} | ${grant.role} | ${grant.resource}${path ? ` / ${path}` : ''} | ${grant.purpose} |`;
}

function between(start: string, end: string): string {
  return readme.slice(readme.indexOf(start) + start.length, readme.indexOf(end)).trim();
}

// The README explains the assignments to reviewers; access.json is what deploys. They must say the same.
describe('infra/README.md', () => {
  it('lists exactly the assignments of access.json', () => {
    const table = ['| # | Role | Scope | Purpose |', '|---|---|---|---|', ...entries.map(row)].join('\n');
    expect(between('<!-- access-table:start -->', '<!-- access-table:end -->')).toBe(table);
  });

  it('lists exactly the database principals of access.json', () => {
    const rows = databasePrincipals.map((p, i) => `| ${i + 1} | ${p.resource} | ${identity} | ${p.administrator ? 'yes' : 'no'} | ${p.purpose} |`);
    const table = ['| # | Server | Principal | Administrator | Purpose |', '|---|---|---|---|---|', ...rows].join('\n');
    expect(between('<!-- database-principals:start -->', '<!-- database-principals:end -->')).toBe(table);
  });

  it('states the assignment counts of one shared identity and of one identity per service', () => {
    const services = ['gateway', 'recommendation', 'vision'];
    const perService = services.map((service) => requiredGrants(rbac, [service]).length);
    const counts = [
      `- One shared user-assigned identity: **${entries.length}** role assignments (${requiredGrants(rbac).length} needs, the doctor's diagnostics send included).`,
      `- One system-assigned identity per service, each with least privilege: **${perService.reduce((a, b) => a + b, 0)}** (${services.map((s, i) => `${s} ${perService[i]}`).join(', ')}), plus the doctor's diagnostics send once per identity it runs as.`,
      `- One system-assigned identity per service, each given the shared set (what copying a role list produces): **${entries.length * services.length}**, three times the shared identity's.`,
    ].join('\n');
    expect(between('<!-- assignment-counts:start -->', '<!-- assignment-counts:end -->')).toBe(counts);
  });
});
