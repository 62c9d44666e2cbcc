// The local Azure owns the RBAC knowledge (role table, access-file validator); the checks take it from there.
import { accessFileSchema, dataActions, loadAccessFile, rolesGranting } from '@keyless/local-azure';
import type { RbacKnowledge } from '../src/index.js';

export const rbac: RbacKnowledge = { loadAccessFile, rolesGranting, dataActions };

export { accessFileSchema };
