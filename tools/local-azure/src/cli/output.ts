import { consoleCell } from '../util/console-line.js';

/** Prints rows as `az` does: `--output json` (default for scripts) or `--output table`. */
export function formatOutput(rows: readonly Record<string, unknown>[] | Record<string, unknown>, output: string, columns?: readonly string[]): string {
  if (output === 'json') return JSON.stringify(rows, null, 2);
  const list = Array.isArray(rows) ? rows : [rows];
  if (list.length === 0) return '';
  const keys = columns ?? Object.keys(list[0]!);
  const cells = list.map((row) => keys.map((key) => cell(row[key])));
  const widths = keys.map((key, i) => Math.max(header(key).length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(keys.map(header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function header(key: string): string {
  return key.charAt(0).toUpperCase() + key.slice(1).replace(/([a-z])([A-Z])/g, '$1 $2');
}

/** A value as a table cell: one line, with nothing a terminal acts on (log rows hold what callers sent). */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  return consoleCell(typeof value === 'object' ? JSON.stringify(value) : String(value));
}
