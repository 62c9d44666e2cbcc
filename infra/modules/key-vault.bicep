// Key Vault in RBAC mode: no access policies, reads need a role assignment (Key Vault Secrets User in
// access.json). It holds no secret today; it is where a third-party secret would go, referenced from an app
// setting as @Microsoft.KeyVault(...) and resolved with the shared identity (keyVaultReferenceIdentity).
param name string
param location string
param tags object

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

output name string = keyVault.name
output uri string = keyVault.properties.vaultUri
