// The local Azure owns the RBAC knowledge (role table, access-file validator); the checks take it from there.
// eslint-disable-next-line @nx/enforce-module-boundaries -- tests reuse the local Azure's access-file validator and role table (one implementation of each)
import { accessFileSchema, dataActions, loadAccessFile, rolesGranting } from '@keyless/local-azure';
import type { RbacKnowledge } from '../src/index.js';

export const rbac: RbacKnowledge = { loadAccessFile, rolesGranting, dataActions };

export { accessFileSchema };
