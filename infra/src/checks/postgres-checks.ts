import { DeployTimeValue, renderString, splitName, type ResourceInstance } from '../bicep/bicep-evaluator.js';
import type { InfraProblem } from './infra-problem.js';

/** A database principal access.json declares (`databasePrincipals`): the shared identity signing in to a server. */
export interface DatabasePrincipalDeclaration {
  resource: 'postgres';
  administrator: boolean;
  purpose: string;
}

/**
 * What the code needs from PostgreSQL, and why: the principal it signs in as must administer the server (the
 * services' migrations create tables and the vector extension at start), and pgvector must be allow-listed.
 */
export const databaseNeeds = {
  principal: {
    resource: 'postgres',
    administrator: true,
    reason: "the services sign in to PostgreSQL as the shared identity, and their migrations create tables and the vector extension at start",
  },
  extensions: [{ name: 'VECTOR', reason: 'the catalog keeps embeddings in vector(N) columns with an HNSW index (pgvector)' }],
} as const;

/** libpq's variables every App Service carries, read by node-postgres; never PGPASSWORD. */
export const databaseAppSettings = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSSLMODE'] as const;

const types = {
  server: 'microsoft.dbforpostgresql/flexibleservers',
  administrator: 'microsoft.dbforpostgresql/flexibleservers/administrators',
  configuration: 'microsoft.dbforpostgresql/flexibleservers/configurations',
  database: 'microsoft.dbforpostgresql/flexibleservers/databases',
};

/** access.json's database principals against the code's needs. */
export function checkDatabasePrincipals(principals: DatabasePrincipalDeclaration[], file: string): InfraProblem[] {
  const need = databaseNeeds.principal;
  const index = principals.findIndex((p) => p.resource === need.resource);
  if (index < 0) {
    return [
      {
        code: 'database-principal-mismatch',
        file,
        message: `declares no database principal on ${need.resource}: ${need.reason}.`,
        fix: `Add to databasePrincipals: {"resource": "${need.resource}", "administrator": true, "purpose": "${need.reason}"}.`,
      },
    ];
  }
  if (!principals[index]!.administrator) {
    return [
      {
        code: 'database-principal-mismatch',
        file,
        entry: `databasePrincipals[${index}]`,
        message: `makes the identity a plain login on ${need.resource}, but ${need.reason}; and the deployment can only create the server's Entra administrator (a plain principal needs pgaadauth_create_principal, run by an administrator after deployment).`,
        fix: `Set "administrator": true in databasePrincipals[${index}].`,
      },
    ];
  }
  return [];
}

/** Where the checked deployment's pieces are. */
export interface PostgresCheckContext {
  deployed: ResourceInstance[];
  /** access.json `databasePrincipals`, when the file could be read. */
  principals?: DatabasePrincipalDeclaration[];
  /** access.json `identity`. */
  identity?: string;
  at: (resource: ResourceInstance) => string;
}

/**
 * The PostgreSQL flexible server as deployed. Rules:
 * - every access.json administrator principal is the server's Entra administrator: an `administrators` child named
 *   by the shared identity's principal id, `principalName` the identity's name, `principalType: ServicePrincipal`,
 *   the tenant; no other administrator;
 * - the extensions the code creates are on the server's `azure.extensions` allow-list;
 * - every App Service reaches it with libpq's variables: PGHOST the server's host name, PGPORT 5432, PGDATABASE a
 *   database deployed on it, PGUSER the administrator's name, PGSSLMODE verify-full (never a password: the secret
 *   rules refuse PGPASSWORD).
 * Password authentication itself is checked with the other local-auth rules (localAuthRules).
 */
export function checkPostgres(context: PostgresCheckContext, problems: InfraProblem[]): void {
  const { deployed, at } = context;
  const ofType = (type: string): ResourceInstance[] => deployed.filter((r) => r.type.toLowerCase() === type);
  const servers = ofType(types.server);
  const fail = (code: InfraProblem['code'], file: string, entry: string | undefined, message: string, fix: string): void => {
    problems.push({ code, file, ...(entry ? { entry } : {}), message, fix });
  };
  const declared = (context.principals ?? []).filter((p) => p.resource === 'postgres' && p.administrator);
  if (!servers.length) {
    if (declared.length) fail('database-principal-mismatch', 'infra/access.json', 'databasePrincipals', 'declares a principal on postgres, but the Bicep files deploy no PostgreSQL flexible server.', 'Deploy the server (infra/modules/postgres.bicep) or remove the principal.');
    return;
  }
  const identityResource = deployed.find((r) => r.type.toLowerCase() === 'microsoft.managedidentity/userassignedidentities' && (!context.identity || r.name === context.identity));
  for (const server of servers) {
    const children = (type: string): ResourceInstance[] => ofType(type).filter((r) => r.body['parent'] === server);
    const administrators = children(types.administrator);
    for (const admin of administrators) {
      const entry = `${admin.symbol}[${admin.index ?? 0}]`;
      const shape = (message: string, fix: string): void => fail('database-principal-mismatch', at(admin), entry, message, fix);
      const name = admin.body['name'];
      const origin = name instanceof DeployTimeValue ? name.origin : undefined;
      if (!origin || origin.resource !== identityResource || origin.path.join('.') !== 'properties.principalId') {
        shape(`is named ${renderString(name)}, not by the shared identity's principal (object) id.`, `Name the administrator by ${context.identity ?? 'the identity'}'s properties.principalId, as the API requires.`);
      }
      const properties = admin.body['properties'] as Record<string, unknown> | undefined;
      if (context.identity && properties?.['principalName'] !== context.identity) {
        shape(`has principalName ${renderString(properties?.['principalName'])}, not "${context.identity}" (access.json identity): the services sign in as the role named after the identity.`, 'Set principalName to access.json\'s identity.');
      }
      if (properties?.['principalType'] !== 'ServicePrincipal') shape(`has principalType ${renderString(properties?.['principalType'])}.`, "Set principalType: 'ServicePrincipal' (a managed identity).");
      if (properties?.['tenantId'] === undefined) shape('names no tenantId.', 'Set tenantId: tenant().tenantId.');
    }
    if (administrators.length !== declared.length) {
      fail(
        'database-principal-mismatch',
        at(server),
        server.symbol,
        `deploys ${administrators.length} Entra administrators; access.json declares ${declared.length} administrator principal${declared.length === 1 ? '' : 's'} on postgres.`,
        'Create the administrators from access.json databasePrincipals (a loop over its administrator entries), nothing else.',
      );
    }
    const allowList = children(types.configuration).find((r) => splitName(r.name).at(-1)?.toLowerCase() === 'azure.extensions');
    const value = allowList ? (allowList.body['properties'] as Record<string, unknown> | undefined)?.['value'] : undefined;
    const allowed = typeof value === 'string' ? value.split(',').map((name) => name.trim().toUpperCase()) : [];
    for (const extension of databaseNeeds.extensions) {
      if (allowed.includes(extension.name)) continue;
      fail(
        'database-extension-missing',
        at(allowList ?? server),
        allowList?.symbol ?? server.symbol,
        `does not allow-list ${extension.name} (azure.extensions is ${allowList ? renderString(value) : 'not set'}); ${extension.reason}, and CREATE EXTENSION is refused otherwise.`,
        `Add ${extension.name} to the server's azure.extensions configuration (postgresExtensions in main.bicep).`,
      );
    }
  }
  checkAppSettings(context, servers, problems);
}

function checkAppSettings(context: PostgresCheckContext, servers: ResourceInstance[], problems: InfraProblem[]): void {
  const { deployed, at } = context;
  const databases = deployed.filter((r) => r.type.toLowerCase() === types.database);
  for (const site of deployed.filter((r) => r.type.toLowerCase() === 'microsoft.web/sites')) {
    const settings = (site.body['properties'] as { siteConfig?: { appSettings?: { name?: unknown; value?: unknown }[] } } | undefined)?.siteConfig?.appSettings ?? [];
    const named = new Map(settings.map((setting) => [String(setting.name), setting.value]));
    const complain = (name: string, message: string, fix: string): void => {
      problems.push({ code: 'database-setting-mismatch', file: at(site), entry: `${site.symbol} ${site.name}`, message: `sets ${name} to ${renderString(named.get(name))}: ${message}`, fix });
    };
    if (!databaseAppSettings.every((name) => named.has(name))) continue; // reported as missing-app-setting
    const host = named.get('PGHOST');
    const hostOrigin = host instanceof DeployTimeValue ? host.origin : undefined;
    const server = hostOrigin && servers.find((s) => s === hostOrigin.resource);
    if (!server || hostOrigin?.path.join('.') !== 'properties.fullyQualifiedDomainName') {
      complain('PGHOST', 'not the host name of the deployed PostgreSQL server.', "Set PGHOST to the server's properties.fullyQualifiedDomainName.");
    }
    if (named.get('PGPORT') !== '5432') complain('PGPORT', 'Azure Database for PostgreSQL listens on 5432.', "Set PGPORT: '5432'.");
    const database = named.get('PGDATABASE');
    if (!databases.some((d) => (!server || d.body['parent'] === server) && splitName(d.name).at(-1) === database)) {
      complain('PGDATABASE', 'no database of that name is deployed on the server.', 'Set PGDATABASE to the database the deployment creates.');
    }
    if (context.identity && named.get('PGUSER') !== context.identity) {
      complain('PGUSER', `the services sign in as the role named after the shared identity, "${context.identity}".`, 'Set PGUSER to access.json\'s identity.');
    }
    if (named.get('PGSSLMODE') !== 'verify-full') complain('PGSSLMODE', 'the server certificate and host name must be verified.', "Set PGSSLMODE: 'verify-full'.");
  }
}
