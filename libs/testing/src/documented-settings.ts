import { readFileSync } from 'node:fs';
import { repoRoot } from './app-service-settings.js';

/** What {@link undocumentedSettings} needs of a service's environment schema: a `settingsSchema` of @keyless/contracts has it. */
export interface SettingsSchema {
  /** The object schema the blank settings are dropped into: its shape names every variable. */
  out: { shape: Readonly<Record<string, unknown>> };
}

/**
 * The variables `schema` reads that the "Configuration" table of the repository's README.md does not list for
 * `service` (a row naming the variable, whose Service column is `all` or names the service), so that a setting
 * added to a service is documented where its operators look.
 *
 * @example
 * expect(undocumentedSettings(gatewayEnvironmentSchema, 'gateway')).toEqual([]);
 */
export function undocumentedSettings(schema: SettingsSchema, service: string): string[] {
  const readme = readFileSync(`${repoRoot}/README.md`, 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  if (start < 0) throw new Error('README.md has no "## Configuration" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const documented = new Set<string>();
  for (const [, variables, services] of section.matchAll(/^\| ([^|]+) \| ([^|]+) \|/gm)) {
    if (!services!.split(',').some((name) => ['all', service].includes(name.trim()))) continue;
    for (const [, name] of variables!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) documented.add(name!);
  }
  return Object.keys(schema.out.shape)
    .filter((name) => !documented.has(name))
    .sort();
}
