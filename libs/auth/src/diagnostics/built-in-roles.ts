import { builtInRoles as roles, dataActions, findRole, rolesGranting, type RoleDefinition } from '@keyless/contracts';

/**
 * The Azure built-in roles the access diagnostics name, with their real definition ids and data actions,
 * least privileged first within a family (the table itself is in @keyless/contracts).
 */
export type BuiltInRole = RoleDefinition;

export const builtInRoles: readonly BuiltInRole[] = roles;

/** The data actions the services' calls are checked against. */
export const knownDataActions = dataActions;

/** The least-privileged built-in role that grants `dataAction` (`*` in patterns spans segments). */
export function leastPrivilegedRoleFor(dataAction: string): BuiltInRole | undefined {
  return rolesGranting(dataAction)[0];
}

/** A built-in role by display name (case-insensitive). */
export function builtInRole(name: string): BuiltInRole | undefined {
  return findRole(name);
}
