import { DatabaseSync } from 'node:sqlite';
import { findRole } from './built-in-roles.js';
import { RoleAssignmentStore } from './role-assignments.js';

describe(RoleAssignmentStore.name, () => {
  const scope = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns';
  const sender = findRole('Azure Service Bus Data Sender')!;

  describe('when the home was written before principal types, descriptions and authors were kept', () => {
    it('adds the columns and reads the old rows as service principals', () => {
      const db = new DatabaseSync(':memory:');
      db.exec(`CREATE TABLE role_assignments (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, role_definition_id TEXT NOT NULL,
        scope TEXT NOT NULL, source TEXT NOT NULL, purpose TEXT, created_on TEXT NOT NULL)`);
      db.prepare('INSERT INTO role_assignments VALUES (?, ?, ?, ?, ?, ?, ?)').run(`${scope}/providers/Microsoft.Authorization/roleAssignments/g`, 'p', sender.id, scope, 'cli', null, '2026-01-01T00:00:00.000Z');
      const store = new RoleAssignmentStore(db);
      expect(store.all()).toEqual([
        expect.objectContaining({ name: 'g', principalType: 'ServicePrincipal', roleDefinitionName: 'Azure Service Bus Data Sender', updatedOn: '2026-01-01T00:00:00.000Z' }),
      ]);
      expect(store.create({ principalId: 'u', principalType: 'User', role: sender, scope, source: 'api', name: 'n', createdBy: 'o' })).toMatchObject({ name: 'n', principalType: 'User', createdBy: 'o' });
    });
  });

  describe('when an assignment of the same role, principal and scope exists', () => {
    it('returns it instead of creating another, whatever name is asked for', () => {
      const store = new RoleAssignmentStore(new DatabaseSync(':memory:'));
      const first = store.create({ principalId: 'p', role: sender, scope, source: 'cli' });
      expect(store.create({ principalId: 'p', role: sender, scope: `${scope}/`, source: 'api', name: 'other' })).toBe(first);
      expect(store.all()).toHaveLength(1);
    });
  });
});
