/**
 * The control-plane actions the local management API checks, with Azure's names. Reads need the specific read
 * action or `*\/read` at the scope; role assignments need `Microsoft.Authorization/roleAssignments/write` /
 * `delete` (Owner, User Access Administrator, Role Based Access Control Administrator).
 */
export const controlPlaneActions = {
  subscriptionRead: 'Microsoft.Resources/subscriptions/read',
  resourcesRead: 'Microsoft.Resources/subscriptions/resourceGroups/resources/read',
  identitiesRead: 'Microsoft.ManagedIdentity/userAssignedIdentities/read',
  sitesRead: 'Microsoft.Web/sites/read',
  roleDefinitionsRead: 'Microsoft.Authorization/roleDefinitions/read',
  roleAssignmentsRead: 'Microsoft.Authorization/roleAssignments/read',
  roleAssignmentsWrite: 'Microsoft.Authorization/roleAssignments/write',
  roleAssignmentsDelete: 'Microsoft.Authorization/roleAssignments/delete',
  /** Reading the activity log; the local sign-in and authorization logs are read with it. */
  logsRead: 'Microsoft.Insights/eventtypes/values/read',
  /**
   * The local Azure's own operations, which Azure has no action for. They are named under a local provider and
   * granted by the Owner role only ({@link ownerOnly}).
   */
  signingKeysRotate: 'Microsoft.LocalAzure/signingKeys/rotate/action',
  faultsWrite: 'Microsoft.LocalAzure/faults/write',
} as const;

/** The roles that may perform the local Azure's own operations: Owner of the scope, nothing less. */
export const ownerOnly = ['Owner'] as const;
