/**
 * The Azure built-in roles the system uses, with their real definition ids and data actions
 * (learn.microsoft.com, built-in roles: AI + machine learning, integration, security, monitor), and the
 * data actions the services' calls are checked against. One table for everyone who reasons about access:
 * the local Azure's RBAC, the auth library's access diagnostics, the infrastructure checks and the doctor.
 * Only data actions matter here: Keyless uses data planes, not ARM.
 */
export interface RoleDefinition {
  /** Display name, as `az role assignment create --role` accepts it. */
  name: string;
  /** The built-in role definition GUID, identical in every Azure tenant. */
  id: string;
  /** Data-action patterns granted (`*` matches any run of characters). */
  dataActions: readonly string[];
  /** Data-action patterns subtracted from `dataActions`. */
  notDataActions: readonly string[];
}

export const builtInRoles: readonly RoleDefinition[] = [
  // Order matters: within a family, narrowest first (see rolesGranting).
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
  {
    name: 'Cognitive Services User',
    id: 'a97b65f3-24c7-4388-baec-2e87135dc908',
    dataActions: ['Microsoft.CognitiveServices/*'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Sender',
    id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
    dataActions: ['Microsoft.ServiceBus/*/send/action'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Receiver',
    id: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
    dataActions: ['Microsoft.ServiceBus/*/receive/action'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Owner',
    id: '090c5cfd-751d-490a-894a-3ce6f1109419',
    dataActions: ['Microsoft.ServiceBus/*'],
    notDataActions: [],
  },
  {
    name: 'Key Vault Secrets User',
    id: '4633458b-17de-408a-b874-0445c86b69e6',
    dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
    notDataActions: [],
  },
  {
    name: 'Monitoring Metrics Publisher',
    id: '3913510d-42f4-4e42-8a64-420c390055eb',
    dataActions: ['Microsoft.Insights/Metrics/Write', 'Microsoft.Insights/Telemetry/Write'],
    notDataActions: [],
  },
];

/** Data actions the local data planes check, named once. */
export const dataActions = {
  openAiChatCompletions: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action',
  openAiEmbeddings: 'Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action',
  visionAnalyze: 'Microsoft.CognitiveServices/accounts/ComputerVision/imageanalysis:analyze/action',
  serviceBusSend: 'Microsoft.ServiceBus/namespaces/messages/send/action',
  serviceBusReceive: 'Microsoft.ServiceBus/namespaces/messages/receive/action',
  /**
   * Managing entities through the namespace's management API (the Manage claim). Azure documents no data
   * action of its own for it: only Azure Service Bus Data Owner (`Microsoft.ServiceBus/*`) grants it.
   */
  serviceBusManage: 'Microsoft.ServiceBus/namespaces/manage/action',
  keyVaultGetSecret: 'Microsoft.KeyVault/vaults/secrets/getSecret/action',
  monitorTelemetryWrite: 'Microsoft.Insights/Telemetry/Write',
} as const;

/** Finds a built-in role by display name or definition id (case-insensitive). */
export function findRole(nameOrId: string): RoleDefinition | undefined {
  const key = nameOrId.trim().toLowerCase();
  return builtInRoles.find((role) => role.name.toLowerCase() === key || role.id === key);
}

/** Whether `role` grants `dataAction` (patterns are case-insensitive; `*` spans segments). */
export function grants(role: RoleDefinition, dataAction: string): boolean {
  return (
    role.dataActions.some((pattern) => matches(pattern, dataAction)) &&
    !role.notDataActions.some((pattern) => matches(pattern, dataAction))
  );
}

/**
 * The built-in roles that grant `dataAction`, least privileged first ({@link builtInRoles} lists each
 * family narrowest first: OpenAI User before OpenAI Contributor before Cognitive Services User, Data
 * Sender/Receiver before Data Owner).
 */
export function rolesGranting(dataAction: string): RoleDefinition[] {
  return builtInRoles.filter((role) => grants(role, dataAction));
}

const patternCache = new Map<string, RegExp>();

function matches(pattern: string, action: string): boolean {
  let regex = patternCache.get(pattern);
  if (!regex) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    regex = new RegExp(`^${source}$`, 'i');
    patternCache.set(pattern, regex);
  }
  return regex.test(action);
}
