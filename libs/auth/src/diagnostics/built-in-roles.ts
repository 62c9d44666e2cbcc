/**
 * The Azure built-in roles that grant the data actions Keyless services use, with their real
 * definition ids (identical in every tenant) and data actions, least privileged first within a family.
 * Used to name the role that fixes an access denial.
 */
export interface BuiltInRole {
  name: string;
  id: string;
  dataActions: readonly string[];
  notDataActions: readonly string[];
}

export const builtInRoles: readonly BuiltInRole[] = [
  {
    name: 'Cognitive Services OpenAI User',
    id: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
    dataActions: [
      'Microsoft.CognitiveServices/accounts/OpenAI/*/read',
      'Microsoft.CognitiveServices/accounts/OpenAI/engines/completions/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/engines/search/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/engines/generate/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/audio/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/search/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/realtime/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/extensions/chat/completions/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/images/generations/action',
      'Microsoft.CognitiveServices/accounts/OpenAI/assistants/*',
    ],
    notDataActions: ['Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read'],
  },
  {
    name: 'Cognitive Services OpenAI Contributor',
    id: 'a001fd3d-188f-4b5d-821b-7da978bf7442',
    dataActions: ['Microsoft.CognitiveServices/accounts/OpenAI/*'],
    notDataActions: [],
  },
  { name: 'Cognitive Services User', id: 'a97b65f3-24c7-4388-baec-2e87135dc908', dataActions: ['Microsoft.CognitiveServices/*'], notDataActions: [] },
  { name: 'Azure Service Bus Data Sender', id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', dataActions: ['Microsoft.ServiceBus/*/send/action'], notDataActions: [] },
  { name: 'Azure Service Bus Data Receiver', id: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0', dataActions: ['Microsoft.ServiceBus/*/receive/action'], notDataActions: [] },
  { name: 'Azure Service Bus Data Owner', id: '090c5cfd-751d-490a-894a-3ce6f1109419', dataActions: ['Microsoft.ServiceBus/*'], notDataActions: [] },
  {
    name: 'Key Vault Secrets User',
    id: '4633458b-17de-408a-b874-0445c86b69e6',
    dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
    notDataActions: [],
  },
];

/** The data actions the services' calls are checked against, named once. */
export const knownDataActions = {
  openAiChatCompletions: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
  openAiEmbeddings: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action',
  visionAnalyze: 'Microsoft.CognitiveServices/accounts/ComputerVision/imageanalysis:analyze/action',
  serviceBusSend: 'Microsoft.ServiceBus/namespaces/messages/send/action',
  serviceBusReceive: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
  keyVaultGetSecret: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
} as const;

const patterns = new Map<string, RegExp>();

function matches(pattern: string, action: string): boolean {
  let regex = patterns.get(pattern);
  if (!regex) {
    regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
    patterns.set(pattern, regex);
  }
  return regex.test(action);
}

/** The least-privileged built-in role that grants `dataAction` (`*` in patterns spans segments). */
export function leastPrivilegedRoleFor(dataAction: string): BuiltInRole | undefined {
  return builtInRoles.find(
    (role) => role.dataActions.some((p) => matches(p, dataAction)) && !role.notDataActions.some((p) => matches(p, dataAction)),
  );
}

/** A built-in role by display name (case-insensitive). */
export function builtInRole(name: string): BuiltInRole | undefined {
  return builtInRoles.find((role) => role.name.toLowerCase() === name.toLowerCase());
}
