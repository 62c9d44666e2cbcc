import { existsSync, readFileSync } from 'node:fs';
import { entityScope } from '@keyless/contracts';
import { z } from 'zod';
import { ConfigError, describeIssues, roleAssignableResourceKeys, type ResourceKey } from '../config/local-azure-config.js';
import { findRole, type RoleDefinition } from './built-in-roles.js';

/** Database servers whose principals the access file can declare. */
export const databaseResourceKeys = ['postgres'] as const;

/**
 * The access file (`infra/access.json`): every role assignment of the shared identity, in a form both
 * Bicep (`loadJsonContent`) and the local Azure read. A scope is a resource (`resource`) and, for
 * Service Bus, optionally a `queue`, a `topic`, or a topic `subscription`. `databasePrincipals` declares
 * the identity as a principal (a login role named after the identity) of a database server: in Azure an
 * administrator becomes the server's Microsoft Entra administrator; locally the role is created in the
 * local PostgreSQL and only declared principals can sign in.
 */
export const accessFileSchema = z.strictObject({
  $schema: z.string().optional(),
  description: z.string().optional(),
  /** Name of the user-assigned identity the assignments belong to. */
  identity: z.string().min(1),
  assignments: z
    .array(
      z.strictObject({
        role: z.string().min(1),
        roleDefinitionId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a role definition GUID'),
        resource: z.enum(roleAssignableResourceKeys),
        queue: z.string().min(1).optional(),
        topic: z.string().min(1).optional(),
        subscription: z.string().min(1).optional(),
        /** Why the identity needs this assignment (shown in reviews and by the doctor). */
        purpose: z.string().min(1),
      }),
    )
    .min(1),
  databasePrincipals: z
    .array(
      z.strictObject({
        /** The database server (a resource key of the local Azure; `postgres` is the flexible server). */
        resource: z.enum(databaseResourceKeys),
        /**
         * Whether the principal administers the server: in Azure the Entra administrator (member of
         * `azure_pg_admin`, may create roles, databases and allow-listed extensions); `false` is a plain login
         * role, which `pgaadauth_create_principal` creates in Azure.
         */
        administrator: z.boolean(),
        /** Why the identity needs to sign in to this server. */
        purpose: z.string().min(1),
      }),
    )
    .default([]),
});

export type AccessFile = z.infer<typeof accessFileSchema>;
export type AccessEntry = AccessFile['assignments'][number];
export type DatabasePrincipalEntry = AccessFile['databasePrincipals'][number];

/** An access-file entry with its role resolved. */
export interface ResolvedAccessEntry extends AccessEntry {
  definition: RoleDefinition;
}

/** Reads and validates the access file; errors name the file, the entry and the field. */
export function loadAccessFile(path: string): { identity: string; entries: ResolvedAccessEntry[]; databasePrincipals: DatabasePrincipalEntry[] } {
  if (!existsSync(path)) throw new ConfigError(`${path}: access file not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = accessFileSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(describeIssues(path, parsed.error.issues));
  const problems: string[] = [];
  const entries = parsed.data.assignments.map((entry, i) => {
    const at = `assignments[${i}]`;
    const definition = findRole(entry.role);
    if (!definition) problems.push(`${at}.role: "${entry.role}" is not a built-in role this system knows`);
    else if (definition.dataActions.length === 0) {
      // Owner, Contributor, User Access Administrator…: a service holding one could change its own access.
      problems.push(
        `${at}.role: "${entry.role}" grants no data action: the access file holds the shared identity's data-plane roles, ` +
          'and a role that manages resources or access would let the services change their own access',
      );
    } else if (definition.id !== entry.roleDefinitionId) {
      problems.push(`${at}.roleDefinitionId: "${entry.role}" has id ${definition.id}, not ${entry.roleDefinitionId}`);
    }
    if (entry.resource !== 'serviceBus' && (entry.queue || entry.topic || entry.subscription)) {
      problems.push(`${at}: queue/topic/subscription only apply to resource "serviceBus"`);
    }
    if (entry.queue && entry.topic) problems.push(`${at}: give either queue or topic, not both`);
    if (entry.subscription && !entry.topic) problems.push(`${at}.subscription: needs the topic it belongs to`);
    return { ...entry, definition: definition! };
  });
  const { databasePrincipals } = parsed.data;
  databasePrincipals.forEach((principal, i) => {
    if (databasePrincipals.findIndex((other) => other.resource === principal.resource) !== i) {
      problems.push(`databasePrincipals[${i}].resource: "${principal.resource}" is declared twice; the identity has one principal per server`);
    }
  });
  if (problems.length) throw new ConfigError(`${path}: ${problems.join('; ')}`);
  return { identity: parsed.data.identity, entries, databasePrincipals };
}

/** The ARM scope of an access-file entry, given the ARM id of its resource. */
export function entryScope(entry: Pick<AccessEntry, 'queue' | 'topic' | 'subscription'>, resourceId: string): string {
  return entityScope(resourceId, entry);
}

export type { ResourceKey };
