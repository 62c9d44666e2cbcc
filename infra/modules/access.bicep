// Every role assignment of the shared identity, one per entry of access.json (passed in as `assignments`).
// Each loop below takes the entries of one kind of scope, so every entry lands at exactly the scope it names:
// Service Bus grants on their queue, topic or subscription, the others on their resource.
// Names are guid(scope, principal, role): deterministic, so a redeployment updates instead of duplicating.
// principalType 'ServicePrincipal' lets ARM skip the directory lookup that fails while a new identity replicates.

@description('Object id of the identity the roles are granted to.')
param principalId string

@description('access.json `assignments`: { role, roleDefinitionId, resource, queue? | topic? [, subscription?], purpose }.')
param assignments array

@description('Resource names by the keys access.json uses: serviceBus, openAi, vision, keyVault, appInsights.')
param resourceNames object

var namespaceGrants = filter(assignments, grant => grant.resource == 'serviceBus' && !contains(grant, 'queue') && !contains(grant, 'topic'))
var queueGrants = filter(assignments, grant => grant.resource == 'serviceBus' && contains(grant, 'queue'))
var topicGrants = filter(assignments, grant => grant.resource == 'serviceBus' && contains(grant, 'topic') && !contains(grant, 'subscription'))
var subscriptionGrants = filter(assignments, grant => grant.resource == 'serviceBus' && contains(grant, 'topic') && contains(grant, 'subscription'))
var openAiGrants = filter(assignments, grant => grant.resource == 'openAi')
var visionGrants = filter(assignments, grant => grant.resource == 'vision')
var keyVaultGrants = filter(assignments, grant => grant.resource == 'keyVault')
var appInsightsGrants = filter(assignments, grant => grant.resource == 'appInsights')

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: resourceNames.serviceBus
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = [for grant in queueGrants: {
  parent: serviceBus
  name: grant.queue
}]

resource topics 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = [for grant in topicGrants: {
  parent: serviceBus
  name: grant.topic
}]

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = [for grant in subscriptionGrants: {
  name: '${resourceNames.serviceBus}/${grant.topic}/${grant.subscription}'
}]

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: resourceNames.openAi
}

resource vision 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: resourceNames.vision
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: resourceNames.keyVault
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: resourceNames.appInsights
}

resource namespaceAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in namespaceGrants: {
  name: guid(serviceBus.id, principalId, grant.roleDefinitionId)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource queueAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in queueGrants: {
  name: guid(queues[i].id, principalId, grant.roleDefinitionId)
  scope: queues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource topicAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in topicGrants: {
  name: guid(topics[i].id, principalId, grant.roleDefinitionId)
  scope: topics[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource subscriptionAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (grant, i) in subscriptionGrants: {
  name: guid(subscriptions[i].id, principalId, grant.roleDefinitionId)
  scope: subscriptions[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource openAiAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in openAiGrants: {
  name: guid(openAi.id, principalId, grant.roleDefinitionId)
  scope: openAi
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource visionAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in visionGrants: {
  name: guid(vision.id, principalId, grant.roleDefinitionId)
  scope: vision
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource keyVaultAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in keyVaultGrants: {
  name: guid(keyVault.id, principalId, grant.roleDefinitionId)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

resource appInsightsAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in appInsightsGrants: {
  name: guid(appInsights.id, principalId, grant.roleDefinitionId)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: grant.purpose
  }
}]

@description('How many role assignments this deployment holds (one per access.json entry).')
output count int = length(namespaceGrants) + length(queueGrants) + length(topicGrants) + length(subscriptionGrants) + length(openAiGrants) + length(visionGrants) + length(keyVaultGrants) + length(appInsightsGrants)
