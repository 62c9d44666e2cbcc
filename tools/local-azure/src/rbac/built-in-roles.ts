// The built-in roles and data actions live in @keyless/contracts (one table for the local Azure, the auth
// library's diagnostics, the infrastructure checks and the doctor).
export { builtInRoles, dataActions, findRole, grants, grantsAction, rolesGranting } from '@keyless/contracts';
export type { RoleDefinition } from '@keyless/contracts';
