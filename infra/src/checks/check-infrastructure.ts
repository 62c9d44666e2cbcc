import { join, relative } from 'node:path';
import { checkAccess, type RbacKnowledge } from './access-checks.js';
import { checkBicep } from './bicep-checks.js';
import { checkGatewayApp } from './gateway-app-checks.js';
import type { InfraProblem } from './infra-problem.js';
import { readTopology } from './topology.js';

/** Where the checked files are; defaults are the repository layout. */
export interface InfraLayout {
  /** Repository root; problems name files relative to it. */
  root: string;
  /** Default: `<root>/infra`. */
  infraDir?: string;
  /** Default: `<root>/azure.yaml`. */
  azureYamlPath?: string;
}

/**
 * Runs every consistency check over the access file (role assignments and database principals), the topology
 * file, the Bicep deployment, azure.yaml and the gateway's app roles, against what the code does (`serviceAccess`,
 * `databaseNeeds`). Returns every problem found; an empty list means consistent.
 *
 * @example
 * const problems = checkInfrastructure({ root: repoRoot }, rbac);
 * if (problems.length) throw new Error(problems.map(formatProblem).join('\n'));
 */
export function checkInfrastructure(layout: InfraLayout, rbac: RbacKnowledge): InfraProblem[] {
  const infraDir = layout.infraDir ?? join(layout.root, 'infra');
  const rel = (path: string): string => relative(layout.root, path) || path;
  const topologyPath = join(infraDir, 'servicebus-topology.json');
  const accessPath = join(infraDir, 'access.json');
  const azureYamlPath = layout.azureYamlPath ?? join(layout.root, 'azure.yaml');
  const topology = readTopology(topologyPath, rel(topologyPath));
  const access = checkAccess({ accessPath, file: rel(accessPath), ...(topology.topology ? { topology: topology.topology } : {}), rbac });
  const bicep = checkBicep({
    root: layout.root,
    mainPath: join(infraDir, 'main.bicep'),
    azureYamlPath,
    ...(topology.topology ? { topology: topology.topology } : {}),
    ...(access.grants ? { grants: access.grants } : {}),
    ...(access.identity ? { identity: access.identity } : {}),
    ...(access.databasePrincipals ? { databasePrincipals: access.databasePrincipals } : {}),
  });
  const rolesPath = join(infraDir, 'gateway-app-roles.json');
  const parametersPath = join(infraDir, 'main.parameters.json');
  const gatewayApp = checkGatewayApp({
    root: layout.root,
    rolesPath,
    rolesFile: rel(rolesPath),
    parametersPath,
    parametersFile: rel(parametersPath),
    azureYamlPath,
    azureYamlFile: rel(azureYamlPath),
  });
  return [...topology.problems, ...access.problems, ...bicep.problems, ...gatewayApp];
}
