// One Linux App Service plan and one App Service per service, all running as the one user-assigned identity.
// Settings carry endpoints and ARM ids only: nothing in them is a credential.
param planName string
param planSku string
param siteNamePrefix string
param siteNameSuffix string
param linuxFxVersion string

@description('The services, one App Service each (azd deploys apps/<service> to the site tagged azd-service-name: <service>).')
param services array = ['gateway', 'recommendation', 'vision']

@description('ARM id of the user-assigned identity every site runs as.')
param identityId string

@description('Client id of that identity: AZURE_CLIENT_ID, which the auth library binds its one credential to.')
param identityClientId string

@description('Endpoint and resource-id settings shared by every service (name → value).')
param appSettings object

@description('Connection string of the Application Insights component (DisableLocalAuth: true): the services export with the identity.')
param appInsightsConnectionString string

param location string
param tags object

// APPLICATIONINSIGHTS_CONNECTION_STRING only routes: the component refuses anything but the identity's token, and the
// services' secret guard lets exactly this setting through (see README.md, "Telemetry without a key").
var sharedSettings = concat(
  [{ name: 'AZURE_CLIENT_ID', value: identityClientId }, { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }],
  map(items(appSettings), setting => { name: setting.key, value: setting.value })
)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'linux'
  sku: { name: planSku }
  properties: {
    reserved: true // Linux
  }
}

resource sites 'Microsoft.Web/sites@2024-04-01' = [for service in services: {
  name: '${siteNamePrefix}${service}${siteNameSuffix}'
  location: location
  tags: union(tags, { 'azd-service-name': service })
  kind: 'app,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in settings resolve with the shared identity (the default would be a
    // system-assigned identity, which these sites do not have).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      linuxFxVersion: linuxFxVersion
      alwaysOn: true // bus consumers must keep their receivers open
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
      // The deployed folder is complete (tools/packager): no build on App Service, start the service itself.
      appCommandLine: 'node dist/main.js'
      // App Service's health check probes every instance here (public, up or down per check): an instance whose
      // identity, bus links or database stay down leaves the load balancer and is replaced.
      healthCheckPath: '/health/ready'
      appSettings: concat(sharedSettings, [{ name: 'OTEL_SERVICE_NAME', value: service }])
    }
  }
}]

// No publishing with user name and password (FTP or the SCM site): deployments authenticate with Entra too.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [for (service, i) in services: {
  parent: sites[i]
  name: 'ftp'
  properties: { allow: false }
}]

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [for (service, i) in services: {
  parent: sites[i]
  name: 'scm'
  properties: { allow: false }
}]

@description('Default host name of each site: [{ service, hostName }].')
output hostNames array = [for (service, i) in services: { service: service, hostName: sites[i].properties.defaultHostName }]
