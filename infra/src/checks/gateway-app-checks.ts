import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayAppRoles } from '@keyless/contracts';
import type { InfraProblem } from './infra-problem.js';

/** The preprovision hook that registers the gateway's app (relative to the repository root). */
export const gatewayAppHook = 'infra/scripts/register-gateway-app.sh';

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface GatewayAppCheckOptions {
  root: string;
  /** `infra/gateway-app-roles.json`: the app roles as Microsoft Graph takes them. */
  rolesPath: string;
  rolesFile: string;
  /** `infra/main.parameters.json`. */
  parametersPath: string;
  parametersFile: string;
  azureYamlPath: string;
  azureYamlFile: string;
}

/**
 * The gateway's app registration in Azure: its app roles are the ones the gateway's routes require
 * (`gatewayAppRoles`), each an application permission with a fixed id; azd registers it before provisioning
 * and passes its client id to the deployment.
 */
export function checkGatewayApp(options: GatewayAppCheckOptions): InfraProblem[] {
  const problems: InfraProblem[] = [];
  const complain = (file: string, message: string, fix: string, entry?: string): void => {
    problems.push({ code: 'gateway-app-mismatch', file, ...(entry ? { entry } : {}), message, fix });
  };

  let roles: unknown;
  try {
    roles = JSON.parse(readFileSync(options.rolesPath, 'utf8'));
  } catch (error) {
    complain(options.rolesFile, `cannot be read as JSON (${(error as Error).message}).`, 'Write the app roles as a JSON array in the Microsoft Graph appRole shape.');
    roles = [];
  }
  const list = Array.isArray(roles) ? (roles as Record<string, unknown>[]) : [];
  if (!Array.isArray(roles)) complain(options.rolesFile, 'is not a JSON array.', 'Write the app roles as a JSON array in the Microsoft Graph appRole shape.');
  const expected = new Map<string, string>(Object.entries(gatewayAppRoles));
  const seenIds = new Set<string>();
  const seenValues = new Set<string>();
  list.forEach((item, i) => {
    const entry = `[${i}]`;
    if (typeof item !== 'object' || item === null) {
      complain(options.rolesFile, `has ${JSON.stringify(item)} where an app role belongs.`, 'Write an object: {"id", "value", "displayName", "description", "allowedMemberTypes", "isEnabled"}.', entry);
      return;
    }
    const role = item;
    const value = String(role['value']);
    if (seenValues.has(value)) {
      complain(options.rolesFile, `declares the app role "${value}" twice.`, 'Keep one entry per role.', entry);
      return;
    }
    seenValues.add(value);
    const description = expected.get(value);
    if (description === undefined) {
      // Retiring a role takes two provisions (Graph refuses to delete an enabled one): disabled first, then removed.
      if (role['isEnabled'] === false) return;
      complain(options.rolesFile, `declares the app role "${value}", which no gateway route requires.`, 'Remove it, or add it to gatewayAppRoles in libs/contracts/src/gateway-app.ts and require it on a route. To retire it, set "isEnabled": false and provision before deleting it.', entry);
      return;
    }
    expected.delete(value);
    const id = String(role['id']);
    if (!guid.test(id) || seenIds.has(id)) {
      complain(options.rolesFile, `gives "${value}" the id ${JSON.stringify(role['id'])}; each role needs its own fixed GUID.`, 'Give the role a new GUID once and never change it (tokens and assignments refer to it).', entry);
    }
    seenIds.add(id);
    if (role['description'] !== description) {
      complain(options.rolesFile, `describes "${value}" as ${JSON.stringify(role['description'])}; the code says ${JSON.stringify(description)}.`, 'Copy the description from libs/contracts/src/gateway-app.ts.', entry);
    }
    const members = role['allowedMemberTypes'];
    if (!Array.isArray(members) || !members.includes('Application') || role['isEnabled'] !== true) {
      complain(options.rolesFile, `"${value}" is not an enabled role for applications; callers are managed identities.`, 'Set "allowedMemberTypes": ["Application"] and "isEnabled": true.', entry);
    }
  });
  for (const missing of expected.keys()) {
    complain(options.rolesFile, `lacks the app role "${missing}", which gateway routes require: no caller could be granted it.`, `Add {"id": <new GUID>, "value": "${missing}", "description": …, "allowedMemberTypes": ["Application"], "isEnabled": true}.`);
  }

  const parameters = existsSync(options.parametersPath) ? readFileSync(options.parametersPath, 'utf8') : '';
  if (!/"gatewayAppId"\s*:\s*\{\s*"value"\s*:\s*"\$\{GATEWAY_APP_ID\}"\s*\}/.test(parameters)) {
    complain(options.parametersFile, 'does not pass ${GATEWAY_APP_ID} (set by the preprovision hook) as gatewayAppId.', 'Add "gatewayAppId": { "value": "${GATEWAY_APP_ID}" } to the parameters.');
  }
  const yaml = existsSync(options.azureYamlPath) ? readFileSync(options.azureYamlPath, 'utf8') : '';
  const preprovision = /^hooks:\s*\n(?:[ \t].*\n)*?[ \t]+preprovision:\s*\n((?:[ \t]{4,}.*\n?)*)/m.exec(yaml)?.[1] ?? '';
  if (!preprovision.includes(gatewayAppHook)) {
    complain(options.azureYamlFile, `has no preprovision hook that runs ${gatewayAppHook}: provisioning would miss the gateway's app registration.`, `Add hooks: preprovision: { shell: sh, run: ./${gatewayAppHook} }.`);
  }
  if (!existsSync(join(options.root, gatewayAppHook))) {
    complain(gatewayAppHook, 'is missing.', 'Restore the script that registers the gateway app.');
  }
  return problems;
}
