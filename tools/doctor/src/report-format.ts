import type { DoctorReport, ProbeStatus } from './access-doctor.js';
import type { CheckAccessReport, CheckedDataAction, CheckedStatus } from './check-access.js';

const statusLabels: Record<ProbeStatus, string> = {
  ok: 'ok',
  'missing-role': 'missing role',
  'propagation-pending': 'propagation pending',
  'identity-not-assigned': 'identity not assigned',
  'endpoint-unreachable': 'endpoint unreachable',
  'missing-principal': 'missing database principal',
  'missing-grant': 'missing grant',
  'missing-extension': 'missing extension',
  'not-configured': 'not configured',
  failed: 'failed',
};

/** The statuses that say the identity lacks an access (a role, a database principal or grant). */
const accessStatuses: ReadonlySet<ProbeStatus> = new Set(['missing-role', 'propagation-pending', 'missing-principal', 'missing-grant']);

/**
 * The report as a table (resource, check, role needed, status), then one entry per problem with its scope, what
 * the platform said and the exact fix command, then a count.
 */
export function formatReport(report: DoctorReport): string {
  const header = ['RESOURCE', 'CHECK', 'ROLE NEEDED', 'STATUS'];
  const rows = report.results.map((r) => [r.resource, r.check, r.roleNeeded ?? '-', statusLabels[r.status]]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  const out = [
    `Access doctor: identity ${report.identity.clientId}${report.identity.principalId ? ` (object id ${report.identity.principalId})` : ''}`,
    '',
    line(header),
    ...rows.map(line),
  ];
  const problems = report.results.filter((r) => r.status !== 'ok');
  if (problems.length) {
    out.push('', 'To fix:');
    problems.forEach((r, i) => {
      // The role (or database grant) and its scope only where access is the problem: beside an unreachable endpoint,
      // a throttled or failing resource or a missing token, they read as a diagnosis the platform did not make.
      const roleProblem = r.roleNeeded && accessStatuses.has(r.status);
      out.push(`${i + 1}. ${r.resource} ${r.check}: ${statusLabels[r.status]}${roleProblem ? ` ("${r.roleNeeded}"${r.scope ? ` on ${r.scope}` : ''})` : ''}`);
      if (r.detail) out.push(`   ${r.detail}`);
      if (r.fix) out.push(`   ${r.fix}`);
      if (r.localFix) out.push(`   local Azure: ${r.localFix}`);
    });
  }
  const okCount = report.results.length - problems.length;
  out.push('', `${okCount} ok, ${problems.length} failing.`);
  if (report.checkAccess) out.push('', ...formatCheckAccess(report.checkAccess));
  return `${out.join('\n')}\n`;
}

const checkedLabels: Record<CheckedStatus, string> = {
  ok: 'ok',
  missing: 'missing',
  'not-in-access-json': 'not in access.json',
  'not-granted': 'not granted',
  'not-read': 'not read',
};

/**
 * The check-access view, as the portal's IAM page shows it: what could not be read and how to read it, then per
 * scope of access.json every data action the identity holds or access.json grants, with the assignment that grants
 * it or the access.json entry that should, the probes that exercised it, and the fix commands at the end.
 */
export function formatCheckAccess(view: CheckAccessReport): string[] {
  const out = [
    `Check access: the role assignments of ${view.principalId ? `object id ${view.principalId}` : 'the identity'}, read from Azure Resource Manager` +
      `${view.endpoint ? ` (${view.endpoint})` : ''} with the identity's own token, on each scope of infra/access.json.`,
  ];
  if (view.unread.length) {
    const resources = view.unread.length + new Set(view.scopes.filter((s) => s.read).map((s) => s.resource)).size;
    out.push('', `Could not read the role assignments on ${view.unread.length} of ${resources} resources:`);
    for (const u of view.unread) {
      out.push(`  ${u.resource}  ${u.scope}`, `    ${u.failure.status ? `${u.failure.status} ` : ''}${u.failure.code}: ${u.failure.message}`);
      if (u.fix) out.push(`    ${u.fix}`);
    }
  }
  if (view.readHelp) {
    const help = view.readHelp;
    out.push(
      `Why: ${help.why}`,
      'To see every scope, either grant the identity Reader on the resource group (read-only: Reader grants no data action;',
      'the access file holds data-plane roles only, so this assignment is made by hand):',
      `  ${help.grantReader.az}`,
      `  local Azure: ${help.grantReader.localAzure}`,
      'or have someone who may read role assignments list them:',
      `  ${help.listAssignments.az}`,
      `  local Azure: ${help.listAssignments.localAzure}`,
    );
  }
  for (const missing of view.notConfigured) {
    out.push('', `Not configured: ${missing.resource} (access.json grants ${missing.roles.map((r) => `"${r}"`).join(', ')} there): set ${missing.variable} to its ARM id to check it.`);
  }
  for (const scope of view.scopes) {
    const shown = scope.dataActions.filter((row) => row.status !== 'not-granted' && (row.status !== 'not-read' || row.expectedBy.length > 0));
    const hidden = scope.dataActions.length - shown.length;
    const width = Math.max(0, ...shown.map((row) => row.dataAction.length));
    out.push('', `${scope.label}  ${scope.scope}${scope.read ? '' : '  (assignments not read)'}`);
    for (const row of shown) out.push(`  ${checkedLabels[row.status].padEnd(18)}  ${row.dataAction.padEnd(width)}  ${describeRow(row, scope.scope)}`);
    if (hidden) out.push(`  (${hidden} more data action${hidden === 1 ? '' : 's'}: ${scope.read ? 'not granted, not needed' : 'not needed'})`);
  }
  const others = view.assignments.filter((a) => !a.inAccessJson);
  if (others.length) {
    out.push('', 'Other role assignments of the identity (not in access.json):');
    for (const a of others) out.push(`  ${a.role} at ${scopeName(a.scope)}${a.principalId.toLowerCase() === view.principalId?.toLowerCase() ? '' : ` (through group ${a.principalId})`}`);
  }
  for (const note of view.notes) out.push('', `Note: ${note}`);
  const { ok, missing, notInAccessJson, notRead } = view.counts;
  out.push('', `Check access: ${ok} ok, ${missing} missing, ${notRead} not read, ${notInAccessJson} not in access.json.`);
  const fixes = [...new Map(view.scopes.flatMap((s) => s.dataActions).filter((r) => r.fix).map((r) => [r.fix!, r])).values()];
  if (fixes.length) {
    out.push('To fix (grant what access.json grants):');
    fixes.forEach((row, i) => {
      out.push(`${i + 1}. ${row.fix}`);
      if (row.localFix) out.push(`   local Azure: ${row.localFix}`);
    });
  }
  return out;
}

function describeRow(row: CheckedDataAction, scope: string): string {
  const parts: string[] = [];
  if (row.grantedBy.length) parts.push(row.grantedBy.map((g) => `${g.role} at ${where(g.scope, scope)}`).join(', '));
  if (row.status !== 'ok' && row.expectedBy.length) parts.push(`access.json: ${row.expectedBy.map((e) => `${e.role} at ${where(e.scope, scope)}`).join(', ')}`);
  if (row.status === 'not-in-access-json') parts.push('access.json does not grant it here (remove the assignment, or add it to access.json)');
  if (row.status !== 'ok' && row.probes.length) parts.push(row.probes.map((p) => `probe ${p.check}: ${statusLabels[p.status as ProbeStatus] ?? p.status}`).join(', '));
  return parts.join('; ');
}

function where(assignmentScope: string, scope: string): string {
  return assignmentScope.toLowerCase() === scope.toLowerCase() ? 'this scope' : `${scopeName(assignmentScope)} (inherited)`;
}

/** A short name for an ARM scope: `subscription …`, `resource group …`, or the resource path after its provider. */
function scopeName(scope: string): string {
  const segments = scope.split('/').filter(Boolean);
  if (segments.length === 2) return `subscription ${segments[1]}`;
  if (segments.length === 4) return `resource group ${segments[3]}`;
  return segments.length > 6 ? segments.slice(6).join('/') : scope;
}
