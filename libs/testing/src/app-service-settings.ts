import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root, from this file's place (libs/testing/src or libs/testing/dist). */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** What {@link missingAppServiceSettings} needs of a service's environment schema (a zod schema has it). */
export interface EnvironmentSchema {
  safeParse(input: unknown): { error?: { issues: readonly { path: readonly PropertyKey[] }[] } | undefined };
}

/** What App Service puts into every app's environment besides its app settings (the identity endpoint, the port). */
const platformVariables = ['PORT', 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'WEBSITE_SITE_NAME', 'WEBSITE_HOSTNAME'];

/**
 * The variables `schema` requires (no default, not optional) that `infra/` does not set on the App Services. In
 * Azure a service's environment is those settings and what the platform adds (`PORT`, `IDENTITY_ENDPOINT`,
 * `IDENTITY_HEADER`, `WEBSITE_SITE_NAME`, `WEBSITE_HOSTNAME`), so each name returned is a service that refuses to start there — a setting missing from the
 * Bicep, or misspelled in it.
 *
 * @example
 * expect(missingAppServiceSettings(gatewayEnvironmentSchema)).toEqual([]);
 */
export function missingAppServiceSettings(schema: EnvironmentSchema): string[] {
  const required = (schema.safeParse({}).error?.issues ?? []).map((issue) => String(issue.path[0]));
  const deployed = [...appServiceSettingNames(), ...platformVariables];
  return [...new Set(required)].filter((name) => !deployed.includes(name)).sort();
}

/**
 * Names of the app settings `infra/` gives every App Service: the ones `modules/app-services.bicep` writes itself
 * (`{ name: 'AZURE_CLIENT_ID', … }`) and the `appSettings` object `main.bicep` passes it, read from the Bicep text
 * (the services' tests may not import `infra`'s evaluator).
 */
function appServiceSettingNames(): string[] {
  const read = (path: string): string => readFileSync(`${repoRoot}/infra/${path}`, 'utf8');
  const own = [...read('modules/app-services.bicep').matchAll(/\bname: '([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!);
  const main = read('main.bicep');
  const start = /^( *)appSettings: \{$/m.exec(main);
  if (!start) throw new Error('infra/main.bicep passes no appSettings object to the App Services');
  const body = main.slice(start.index + start[0].length, main.indexOf(`\n${start[1]}}`, start.index));
  const passed = [...body.matchAll(/^ *([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!);
  return [...new Set([...own, ...passed])].sort();
}
