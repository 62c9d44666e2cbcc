import { dataActions, findRole, grants, rolesGranting } from './azure-roles.js';

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
      expect(findRole('Owner')).toBeUndefined();
    });
  });
});
