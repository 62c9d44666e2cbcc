// The one user-assigned identity every service runs as (see access.json for what it may do).
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
@description('Object id of the service principal: what role assignments name.')
output principalId string = identity.properties.principalId
