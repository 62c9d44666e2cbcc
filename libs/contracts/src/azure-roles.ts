/**
 * The Azure built-in roles the system uses, with their real definition ids, control-plane actions and data
 * actions (learn.microsoft.com, built-in roles: privileged, general, AI + machine learning, integration, security,
 * monitor). One table for everyone who reasons about access: the local Azure's RBAC (control plane and data
 * planes), the auth library's access diagnostics, the infrastructure checks and the doctor.
 *
 * Azure RBAC checks the two planes separately: a management (ARM) request needs an `actions` pattern that
 * matches and no `notActions` pattern that matches; a data-plane request needs the same of `dataActions` /
 * `notDataActions`. So Owner (`*` actions) may grant roles but may not read a queue's messages, and Azure
 * Service Bus Data Owner (`Microsoft.ServiceBus/*` in both) may do both on Service Bus.
 */
export interface RoleDefinition {
  /** Display name (`roleName`), as `az role assignment create --role` accepts it. */
  name: string;
  /** The built-in role definition GUID, identical in every Azure tenant. */
  id: string;
  /** Azure's description of the role. */
  description: string;
  /** Control-plane action patterns granted (`*` matches any run of characters). */
  actions: readonly string[];
  /** Control-plane action patterns subtracted from `actions`. */
  notActions: readonly string[];
  /** Data-action patterns granted (`*` matches any run of characters). */
  dataActions: readonly string[];
  /** Data-action patterns subtracted from `dataActions`. */
  notDataActions: readonly string[];
}

const cognitiveServicesReadActions = [
  'Microsoft.CognitiveServices/*/read',
  'Microsoft.Authorization/roleAssignments/read',
  'Microsoft.Authorization/roleDefinitions/read',
] as const;

const serviceBusEntityReadActions = [
  'Microsoft.ServiceBus/*/queues/read',
  'Microsoft.ServiceBus/*/topics/read',
  'Microsoft.ServiceBus/*/topics/subscriptions/read',
] as const;

export const builtInRoles: readonly RoleDefinition[] = [
  // Order matters: within a family, narrowest first (see rolesGranting).
  {
    name: 'Cognitive Services OpenAI User',
    id: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
    description: "Ability to view files, models, deployments. Readers can't make any changes They can inference and create images",
    actions: cognitiveServicesReadActions,
    notActions: [],
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
    description: 'Full access including the ability to fine-tune, deploy and generate text',
    actions: [
      'Microsoft.CognitiveServices/*/read',
      'Microsoft.CognitiveServices/accounts/deployments/write',
      'Microsoft.CognitiveServices/accounts/deployments/delete',
      'Microsoft.CognitiveServices/accounts/raiPolicies/read',
      'Microsoft.CognitiveServices/accounts/raiPolicies/write',
      'Microsoft.CognitiveServices/accounts/raiPolicies/delete',
      'Microsoft.CognitiveServices/accounts/commitmentplans/read',
      'Microsoft.CognitiveServices/accounts/commitmentplans/write',
      'Microsoft.CognitiveServices/accounts/commitmentplans/delete',
      'Microsoft.Authorization/roleAssignments/read',
      'Microsoft.Authorization/roleDefinitions/read',
    ],
    notActions: [],
    dataActions: ['Microsoft.CognitiveServices/accounts/OpenAI/*'],
    notDataActions: [],
  },
  {
    name: 'Cognitive Services User',
    id: 'a97b65f3-24c7-4388-baec-2e87135dc908',
    description: 'Lets you read and list keys of Cognitive Services.',
    actions: [
      'Microsoft.CognitiveServices/*/read',
      'Microsoft.CognitiveServices/accounts/listkeys/action',
      'Microsoft.Insights/alertRules/read',
      'Microsoft.Insights/diagnosticSettings/read',
      'Microsoft.Insights/logDefinitions/read',
      'Microsoft.Insights/metricdefinitions/read',
      'Microsoft.Insights/metrics/read',
      'Microsoft.ResourceHealth/availabilityStatuses/read',
      'Microsoft.Resources/deployments/operations/read',
      'Microsoft.Resources/subscriptions/operationresults/read',
      'Microsoft.Resources/subscriptions/read',
      'Microsoft.Resources/subscriptions/resourceGroups/read',
      'Microsoft.Support/*',
    ],
    notActions: [],
    dataActions: ['Microsoft.CognitiveServices/*'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Sender',
    id: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
    description: 'Allows for send access to Azure Service Bus resources.',
    actions: serviceBusEntityReadActions,
    notActions: [],
    dataActions: ['Microsoft.ServiceBus/*/send/action'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Receiver',
    id: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
    description: 'Allows for receive access to Azure Service Bus resources.',
    actions: serviceBusEntityReadActions,
    notActions: [],
    dataActions: ['Microsoft.ServiceBus/*/receive/action'],
    notDataActions: [],
  },
  {
    name: 'Azure Service Bus Data Owner',
    id: '090c5cfd-751d-490a-894a-3ce6f1109419',
    description: 'Allows for full access to Azure Service Bus resources.',
    actions: ['Microsoft.ServiceBus/*'],
    notActions: [],
    dataActions: ['Microsoft.ServiceBus/*'],
    notDataActions: [],
  },
  {
    name: 'Key Vault Secrets User',
    id: '4633458b-17de-408a-b874-0445c86b69e6',
    description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
    actions: [],
    notActions: [],
    dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
    notDataActions: [],
  },
  {
    name: 'Monitoring Metrics Publisher',
    id: '3913510d-42f4-4e42-8a64-420c390055eb',
    description: 'Enables publishing metrics against Azure resources',
    actions: ['Microsoft.Insights/Register/Action', 'Microsoft.Support/*', 'Microsoft.Resources/subscriptions/resourceGroups/read'],
    notActions: [],
    dataActions: ['Microsoft.Insights/Metrics/Write', 'Microsoft.Insights/Telemetry/Write'],
    notDataActions: [],
  },
  // The general roles: control plane only (no data actions), narrowest first.
  {
    name: 'Reader',
    id: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
    description: 'View all resources, but does not allow you to make any changes.',
    actions: ['*/read'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    name: 'Role Based Access Control Administrator',
    id: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
    description:
      'Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.',
    actions: ['Microsoft.Authorization/roleAssignments/write', 'Microsoft.Authorization/roleAssignments/delete', '*/read', 'Microsoft.Support/*'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    name: 'User Access Administrator',
    id: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    description: 'Lets you manage user access to Azure resources.',
    actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
    notActions: [],
    dataActions: [],
    notDataActions: [],
  },
  {
    name: 'Contributor',
    id: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    description:
      'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.',
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
      'Microsoft.Blueprint/blueprintAssignments/write',
      'Microsoft.Blueprint/blueprintAssignments/delete',
      'Microsoft.Compute/galleries/share/action',
      'Microsoft.Purview/consents/write',
      'Microsoft.Purview/consents/delete',
      'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
      'Microsoft.Subscription/cancel/action',
      'Microsoft.Subscription/enable/action',
    ],
    dataActions: [],
    notDataActions: [],
  },
  {
    name: 'Owner',
    id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    actions: ['*'],
    notActions: [],
    dataActions: [],
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
 * Whether `role` grants the control-plane `action` (patterns are case-insensitive; `*` spans segments):
 * an `actions` pattern matches and no `notActions` pattern does. Data actions never count here.
 *
 * @example
 * grantsAction(findRole('Contributor')!, 'Microsoft.Authorization/roleAssignments/write'); // false
 */
export function grantsAction(role: RoleDefinition, action: string): boolean {
  return role.actions.some((pattern) => matches(pattern, action)) && !role.notActions.some((pattern) => matches(pattern, action));
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
