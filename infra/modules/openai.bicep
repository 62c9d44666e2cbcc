// Azure OpenAI: the chat and embeddings deployments the recommendation service calls, Entra tokens only.
param name string

@description('Model deployments, created one after another (the account refuses concurrent deployment changes): { deployment, name, version, sku, capacity }.')
param deployments array

param location string
param tags object

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  properties: {
    // Entra tokens are accepted only on the custom-subdomain endpoint.
    customSubDomainName: name
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: true
  }
}

@batchSize(1)
resource modelDeployments 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [for model in deployments: {
  parent: openAi
  name: model.deployment
  sku: {
    name: model.sku
    capacity: model.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: model.name
      version: model.version
    }
  }
}]

output name string = openAi.name
output id string = openAi.id
output endpoint string = openAi.properties.endpoint
