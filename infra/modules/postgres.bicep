// Azure Database for PostgreSQL flexible server with Microsoft Entra authentication only. The shared identity is the
// server's Entra administrator — the principal the services sign in as, with an access token as the password —
// and password authentication is off, so no administrator password exists to leak. pgvector is allow-listed for
// the catalog's embeddings.
@description('Server name (globally unique: <name>.postgres.database.azure.com).')
param name string

@description('The database the services use (created here; the local Azure creates the same one).')
param databaseName string

@description('access.json databasePrincipals entries of this server: the shared identity as a principal. An administrator entry becomes the Entra administrator.')
param principals array

@description('Name of the shared user-assigned identity: the role it signs in as (Azure names a managed identity\'s role after it).')
param identityName string

@description('Object (principal) id of that identity: the administrator resource is named by it.')
param identityPrincipalId string

@description('Extensions the administrator may create (azure.extensions), in upper case as Azure lists them.')
param extensions array

@description('Compute: Burstable B2s serves several instances of three services (max_connections 429; B1ms has 50).')
param sku object = { name: 'Standard_B2s', tier: 'Burstable' }

@description('PostgreSQL major version.')
param version string = '17'

param location string
param tags object

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: sku
  properties: {
    version: version
    // Entra tokens only: no administratorLogin, no administratorLoginPassword.
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: tenant().tenantId
    }
    storage: { storageSizeGB: 32, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: 7, geoRedundantBackup: 'Disabled' }
    highAvailability: { mode: 'Disabled' }
    // App Service without VNet integration reaches the server over its public endpoint, from Azure's outbound
    // addresses (the firewall rule below). Every connection still needs TLS and an Entra token of a principal.
    network: { publicNetworkAccess: 'Enabled' }
  }
}

// "Allow public access from any Azure service within Azure to this server": the 0.0.0.0 rule admits Azure's
// outbound addresses (App Service's among them), not the internet. For a private server, use VNet integration of
// the App Services and a delegated subnet instead (infra/README.md).
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
}

// The shared identity as the server's Microsoft Entra administrator (member of azure_pg_admin: it creates the tables
// and the allow-listed extensions), from its access.json entry. The resource is named by the principal's object id,
// as the API requires. A flexible server applies one change at a time: the child resources are chained with
// dependsOn.
resource administrators 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = [for principal in filter(principals, principal => principal.administrator): {
  parent: server
  name: identityPrincipalId
  properties: {
    principalName: identityName
    principalType: 'ServicePrincipal'
    tenantId: tenant().tenantId
  }
  dependsOn: [azureServices]
}]

// pgvector's `CREATE EXTENSION vector` is refused to azure_pg_admin members unless the extension is allow-listed.
resource extensionAllowList 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'azure.extensions'
  properties: {
    value: join(extensions, ',')
    source: 'user-override'
  }
  dependsOn: [administrators]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
  dependsOn: [extensionAllowList]
}

output id string = server.id
output name string = server.name
@description('Host name for PGHOST: <name>.postgres.database.azure.com.')
output host string = server.properties.fullyQualifiedDomainName
output databaseName string = databaseName
