import { builtInRoles, dataActions, findRole, grants, grantsAction, rolesGranting } from './azure-roles.js';

describe('built-in roles', () => {
  describe('grants', () => {
    it.each([
      ['Cognitive Services OpenAI User', dataActions.openAiChatCompletions, true],
      ['Cognitive Services OpenAI User', dataActions.openAiEmbeddings, true],
      ['Cognitive Services OpenAI User', dataActions.visionAnalyze, false],
      ['Cognitive Services OpenAI User', 'Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read', false],
      ['Cognitive Services User', dataActions.visionAnalyze, true],
      ['Azure Service Bus Data Sender', dataActions.serviceBusSend, true],
      ['Azure Service Bus Data Sender', dataActions.serviceBusReceive, false],
      ['Azure Service Bus Data Receiver', dataActions.serviceBusReceive, true],
      ['Azure Service Bus Data Owner', dataActions.serviceBusSend, true],
      ['Azure Service Bus Data Owner', dataActions.serviceBusManage, true],
      ['Azure Service Bus Data Sender', dataActions.serviceBusManage, false],
      ['Azure Service Bus Data Receiver', dataActions.serviceBusManage, false],
      ['Key Vault Secrets User', dataActions.keyVaultGetSecret, true],
      ['Monitoring Metrics Publisher', dataActions.monitorTelemetryWrite, true],
    ])('%s → %s: %s', (role, action, expected) => {
      expect(grants(findRole(role)!, action)).toBe(expected);
    });

    it('matches data actions case-insensitively, as Azure does', () => {
      expect(grants(findRole('Azure Service Bus Data Sender')!, dataActions.serviceBusSend.toLowerCase())).toBe(true);
    });
  });

  describe('grantsAction', () => {
    const write = 'Microsoft.Authorization/roleAssignments/write';
    it.each([
      ['Owner', write, true],
      ['User Access Administrator', write, true],
      ['Role Based Access Control Administrator', write, true],
      ['Role Based Access Control Administrator', 'Microsoft.Authorization/roleAssignments/delete', true],
      ['Contributor', write, false],
      ['Contributor', 'Microsoft.Authorization/roleAssignments/delete', false],
      ['Contributor', 'Microsoft.Web/sites/read', true],
      ['Reader', write, false],
      ['Reader', 'Microsoft.Authorization/roleAssignments/read', true],
      ['Azure Service Bus Data Owner', write, false],
      ['Azure Service Bus Data Owner', 'Microsoft.ServiceBus/namespaces/read', true],
      ['Azure Service Bus Data Sender', 'Microsoft.ServiceBus/namespaces/queues/read', true],
      ['Azure Service Bus Data Sender', 'Microsoft.ServiceBus/namespaces/read', false],
      ['Cognitive Services OpenAI User', 'Microsoft.CognitiveServices/accounts/deployments/read', true],
      ['Key Vault Secrets User', 'Microsoft.KeyVault/vaults/read', false],
    ])('%s → %s: %s', (role, action, expected) => {
      expect(grantsAction(findRole(role)!, action)).toBe(expected);
    });

    it('keeps the planes apart: control-plane roles grant no data action, and data actions are not actions', () => {
      expect(grants(findRole('Owner')!, dataActions.serviceBusReceive)).toBe(false);
      expect(grantsAction(findRole('Azure Service Bus Data Receiver')!, dataActions.serviceBusReceive)).toBe(false);
    });
  });

  describe('rolesGranting', () => {
    it('names the least-privileged role first', () => {
      expect(rolesGranting(dataActions.openAiChatCompletions).map((r) => r.name)).toEqual([
        'Cognitive Services OpenAI User',
        'Cognitive Services OpenAI Contributor',
        'Cognitive Services User',
      ]);
      expect(rolesGranting(dataActions.serviceBusReceive)[0]!.name).toBe('Azure Service Bus Data Receiver');
      expect(rolesGranting(dataActions.serviceBusManage).map((r) => r.name)).toEqual(['Azure Service Bus Data Owner']);
    });
  });

  describe('findRole', () => {
    it('finds a role by display name (any case) or by definition id', () => {
      expect(findRole('azure service bus data sender')?.id).toBe('69a216fc-b8fb-44d8-bc22-1f3c2cd27a39');
      expect(findRole('a97b65f3-24c7-4388-baec-2e87135dc908')?.name).toBe('Cognitive Services User');
      expect(findRole('owner')?.id).toBe('8e3af657-a8ff-443c-a75c-2fe8c4bcb635');
      expect(findRole('Storage Blob Data Reader')).toBeUndefined();
    });

    it('holds each built-in role once, by name and by id', () => {
      expect(new Set(builtInRoles.map((r) => r.name)).size).toBe(builtInRoles.length);
      expect(new Set(builtInRoles.map((r) => r.id)).size).toBe(builtInRoles.length);
    });
  });
});
