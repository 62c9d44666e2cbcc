// Azure AI Vision (Image Analysis 4.0), Entra tokens only.
param name string
param location string
param tags object

@description('S1 (F0 allows one free account per subscription and 20 calls a minute).')
param sku string = 'S1'

resource vision 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'ComputerVision'
  sku: { name: sku }
  properties: {
    // Entra tokens are accepted only on the custom-subdomain endpoint.
    customSubDomainName: name
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: true
  }
}

output name string = vision.name
output id string = vision.id
output endpoint string = vision.properties.endpoint
