/**
 * Stable codes of what the consistency checks find.
 * - `access-file-invalid`: access.json cannot be used (unknown role, wrong role id, bad shape).
 * - `unknown-scope`: an access entry names a queue, topic or subscription the topology does not declare.
 * - `topology-invalid`: the topology file cannot be deployed as written.
 * - `duplicate-entity`: the topology names an entity twice.
 * - `missing-grant`: something the code does is granted by no assignment.
 * - `unjustified-grant`: an assignment no need explains (an extra role, or a broader scope than needed).
 * - `duplicate-grant`: the same role on the same scope twice.
 * - `privileged-role`: Owner, Contributor, a Data Owner or another role that manages or grants access.
 * - `bicep-unreadable`: the Bicep files could not be read or evaluated.
 * - `entity-mismatch`: the Service Bus entities Bicep deploys differ from the topology file.
 * - `entity-settings-mismatch`: an entity is deployed with settings other than the topology's.
 * - `hand-written-entity`: a Service Bus entity or access scope named in Bicep instead of read from the files.
 * - `hand-written-role`: a role definition GUID written in Bicep instead of read from access.json.
 * - `hand-written-api-version`: an App Service sets OPENAI_API_VERSION to another version than `openAiApiVersion` of
 *   @keyless/contracts (the one declaration, the services' default).
 * - `assignment-mismatch`: the role assignments Bicep deploys differ from access.json.
 * - `assignment-shape`: a role assignment without a guid() name, principalType ServicePrincipal or the shared identity.
 * - `key-based-setting`: a key, key listing or key-based setting (listKeys, SharedAccessKey, apiKey, …).
 * - `local-auth-enabled`: a resource that accepts keys or passwords.
 * - `unreviewed-resource-type`: a resource type the checks do not know; review its local auth, then add it.
 * - `app-identity`: an App Service that does not run as exactly the shared identity.
 * - `missing-app-setting`: an App Service without a setting the services read.
 * - `health-check-mismatch`: an App Service whose health check does not probe the services' readiness endpoint.
 * - `service-mismatch`: the App Services, azure.yaml and the services of the code disagree.
 * - `gateway-app-mismatch`: the gateway's app registration (roles file, preprovision hook, parameter) differs from the code.
 * - `alert-mismatch`: the Azure alerts and the local Azure's alert rules disagree (a missing counterpart, another
 *   severity, no action group, a receiver without the common alert schema, the wrong signal).
 * - `database-principal-mismatch`: the database principals of access.json and the server's Entra administrators
 *   differ (missing, extra, wrong name, principal or type), or the principal cannot do what the code needs.
 * - `database-extension-missing`: an extension the code creates is not on the server's allow-list (azure.extensions).
 * - `database-setting-mismatch`: an App Service's PG* settings do not lead to the deployed server, database and
 *   principal over verified TLS.
 */
export type InfraProblemCode =
  | 'access-file-invalid'
  | 'unknown-scope'
  | 'topology-invalid'
  | 'duplicate-entity'
  | 'missing-grant'
  | 'unjustified-grant'
  | 'duplicate-grant'
  | 'privileged-role'
  | 'bicep-unreadable'
  | 'entity-mismatch'
  | 'entity-settings-mismatch'
  | 'hand-written-entity'
  | 'hand-written-role'
  | 'hand-written-api-version'
  | 'assignment-mismatch'
  | 'assignment-shape'
  | 'key-based-setting'
  | 'local-auth-enabled'
  | 'unreviewed-resource-type'
  | 'app-identity'
  | 'missing-app-setting'
  | 'health-check-mismatch'
  | 'service-mismatch'
  | 'gateway-app-mismatch'
  | 'alert-mismatch'
  | 'database-principal-mismatch'
  | 'database-extension-missing'
  | 'database-setting-mismatch';

/** One finding: which file (and entry) is wrong, what is wrong, and how to fix it. */
export interface InfraProblem {
  code: InfraProblemCode;
  /** File the problem is in, relative to the repository root where possible. */
  file: string;
  /** The entry within the file (`assignments[3]`, `Queues[1].Name`, `modules/access.bicep:42`). */
  entry?: string;
  message: string;
  fix: string;
}

/** One line per problem: `file (entry): message Fix: fix`. */
export function formatProblem(problem: InfraProblem): string {
  return `${problem.file}${problem.entry ? ` (${problem.entry})` : ''}: ${problem.message} Fix: ${problem.fix}`;
}
