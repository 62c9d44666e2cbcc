import { builtInRoles as localAzureRoles, dataActions as localAzureDataActions } from '@keyless/local-azure';
import { builtInRoles, knownDataActions, leastPrivilegedRoleFor } from './built-in-roles.js';

describe('builtInRoles', () => {
  describe('when compared with the local Azure\'s RBAC table', () => {
    it.each(builtInRoles.map((role) => [role.name, role] as const))('%s has the same id and data actions', (name, role) => {
      const local = localAzureRoles.find((r) => r.name === name);
      expect(local).toBeDefined();
      expect({ id: local!.id, dataActions: local!.dataActions, notDataActions: local!.notDataActions }).toEqual({
        id: role.id,
        dataActions: role.dataActions,
        notDataActions: role.notDataActions,
      });
    });

    it('names the same data actions', () => {
      expect(Object.values(knownDataActions).every((action) => Object.values(localAzureDataActions).includes(action as never))).toBe(true);
    });
  });
});

describe(leastPrivilegedRoleFor.name, () => {
  it.each([
    [knownDataActions.openAiChatCompletions, 'Cognitive Services OpenAI User'],
    [knownDataActions.openAiEmbeddings, 'Cognitive Services OpenAI User'],
    ['Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read', 'Cognitive Services OpenAI Contributor'],
    [knownDataActions.visionAnalyze, 'Cognitive Services User'],
    [knownDataActions.serviceBusSend, 'Azure Service Bus Data Sender'],
    [knownDataActions.serviceBusReceive, 'Azure Service Bus Data Receiver'],
    [knownDataActions.keyVaultGetSecret, 'Key Vault Secrets User'],
  ])('grants %s with %s', (action, role) => {
    expect(leastPrivilegedRoleFor(action)?.name).toBe(role);
  });

  it('knows no role for an unknown data action', () => {
    expect(leastPrivilegedRoleFor('Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read')).toBeUndefined();
  });
});
