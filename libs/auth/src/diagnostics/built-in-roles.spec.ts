import { knownDataActions, leastPrivilegedRoleFor } from './built-in-roles.js';

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
