import type { DoctorReport, ProbeStatus } from './access-doctor.js';

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
      out.push(`${i + 1}. ${r.resource} ${r.check}: ${statusLabels[r.status]}${r.roleNeeded && r.status !== 'not-configured' ? ` ("${r.roleNeeded}"${r.scope ? ` on ${r.scope}` : ''})` : ''}`);
      if (r.detail) out.push(`   ${r.detail}`);
      if (r.fix) out.push(`   ${r.fix}`);
      if (r.localFix) out.push(`   local Azure: ${r.localFix}`);
    });
  }
  const okCount = report.results.length - problems.length;
  out.push('', `${okCount} ok, ${problems.length} failing.`);
  return `${out.join('\n')}\n`;
}
