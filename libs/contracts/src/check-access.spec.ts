import { dataActions, findRole, type RoleDefinition } from './azure-roles.js';
import { effectiveDataActions, entityScope, roleAssignmentCreateCommands, type AssignmentRef } from './check-access.js';

const principalId = '6f1c2a9e-4b7d-4e21-9a0c-3d5e8f7a1b24';
const other = '0d9e8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b';
const subscription = '/subscriptions/2b8f4c1e-7d3a-4f6b-9e0c-5a1d2c3b4e5f';
const group = `${subscription}/resourceGroups/rg-keyless`;
const namespace = `${group}/providers/Microsoft.ServiceBus/namespaces/sb-keyless`;
const queue = `${namespace}/queues/replies`;
const definitionId = (role: string): string => `${subscription}/providers/Microsoft.Authorization/roleDefinitions/${findRole(role)!.id}`;
const assignment = (role: string, scope: string, who = principalId): AssignmentRef => ({
  id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${role.length.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`,
  principalId: who,
  roleDefinitionId: definitionId(role),
  scope,
});

describe(effectiveDataActions.name, () => {
  const send = dataActions.serviceBusSend;
  const receive = dataActions.serviceBusReceive;

  it('grants a data action through an assignment at the scope, naming the assignment, its role and its scope', () => {
    const sender = assignment('Azure Service Bus Data Sender', queue);
    const [row] = effectiveDataActions(principalId, queue, [sender], [send]);
    expect(row).toEqual({ dataAction: send, granted: true, grantedBy: [{ assignmentId: sender.id, role: 'Azure Service Bus Data Sender', scope: queue }] });
  });

  it('inherits an assignment made above the scope, compared by whole segments without regard to case', () => {
    const owner = assignment('Azure Service Bus Data Owner', group.toUpperCase());
    const rows = effectiveDataActions(principalId, queue, [owner], [send, receive]);
    expect(rows.map((r) => [r.granted, r.grantedBy.map((g) => g.role)])).toEqual([
      [true, ['Azure Service Bus Data Owner']],
      [true, ['Azure Service Bus Data Owner']],
    ]);
    expect(effectiveDataActions(principalId, `${namespace}x/queues/replies`, [assignment('Azure Service Bus Data Owner', namespace)], [send])[0]!.granted).toBe(false);
  });

  it('ignores assignments of other principals, below the scope, or of roles that do not grant the action', () => {
    const rows = effectiveDataActions(
      principalId,
      namespace,
      [assignment('Azure Service Bus Data Sender', namespace, other), assignment('Azure Service Bus Data Sender', queue), assignment('Reader', group)],
      [send],
    );
    expect(rows).toEqual([{ dataAction: send, granted: false, grantedBy: [] }]);
  });

  it('resolves roles from the definitions it is given (a custom role read from ARM), not only the built-in ones', () => {
    const custom: RoleDefinition = { name: 'Bus sender (custom)', id: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d', description: '', actions: [], notActions: [], dataActions: ['Microsoft.ServiceBus/*/send/action'], notDataActions: [] };
    const held: AssignmentRef = { id: `${queue}/providers/Microsoft.Authorization/roleAssignments/x`, principalId, roleDefinitionId: custom.id, scope: queue };
    expect(effectiveDataActions(principalId, queue, [held], [send, receive], [custom]).map((r) => r.granted)).toEqual([true, false]);
    expect(effectiveDataActions(principalId, queue, [held], [send]).map((r) => r.granted)).toEqual([false]);
  });

  it('evaluates every data action the Keyless data planes check by default', () => {
    expect(effectiveDataActions(principalId, queue, []).map((r) => r.dataAction)).toEqual(Object.values(dataActions));
  });
});

describe(entityScope.name, () => {
  it.each([
    [{ queue: 'replies' }, `${namespace}/queues/replies`],
    [{ topic: 'events' }, `${namespace}/topics/events`],
    [{ topic: 'events', subscription: 'vision' }, `${namespace}/topics/events/subscriptions/vision`],
    [{}, namespace],
  ])('scopes %j below the resource', (entity, scope) => {
    expect(entityScope(namespace, entity)).toBe(scope);
  });
});

describe(roleAssignmentCreateCommands.name, () => {
  it('names the principal by object id and type, the role by name, and gives the same arguments to the local CLI', () => {
    expect(roleAssignmentCreateCommands(principalId, 'ServicePrincipal', 'Reader', group)).toEqual({
      az: `az role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Reader" --scope ${group}`,
      localAzure: `npm run local-azure -- role assignment create --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --role "Reader" --scope ${group}`,
    });
  });
});
