// Keyless on Azure: one user-assigned identity shared by the three App Services, its role assignments and database
// principal read from access.json, the Service Bus entities read from servicebus-topology.json, and every data
// plane with local (key) or password authentication disabled. Deploy with `azd up` (see README.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds the globally unique resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer Azure OpenAI (both models below) and Image Analysis 4.0 captions.')
param location string

@description('Chat model deployment: deployment name, model name and version, deployment SKU and capacity (thousands of tokens per minute).')
param chatModel object = {
  deployment: 'gpt-4o-mini'
  name: 'gpt-4o-mini'
  version: '2024-07-18'
  sku: 'GlobalStandard'
  capacity: 30
}

@description('Embeddings model deployment (same shape as chatModel).')
param embeddingsModel object = {
  deployment: 'text-embedding-3-small'
  name: 'text-embedding-3-small'
  version: '1'
  sku: 'Standard'
  capacity: 120
}

@description('App Service plan SKU (B1 or larger: the bus consumers need Always On).')
param appServicePlanSku string = 'B1'

@description('Runtime stack of the App Services (`az webapp list-runtimes --os linux` lists what a region offers).')
param linuxFxVersion string = 'NODE|24-lts'

@minLength(36)
@maxLength(36)
@description('Client id of the gateway\'s Entra app registration, whose app roles callers are granted. azd\'s preprovision hook (scripts/register-gateway-app.sh) registers it and sets GATEWAY_APP_ID.')
param gatewayAppId string

@description('The PostgreSQL database the services use (PGDATABASE).')
param postgresDatabase string = 'keyless'

@description('Extensions the services create in PostgreSQL, as azure.extensions lists them (pgvector: VECTOR).')
param postgresExtensions array = ['VECTOR']

@description('Email address that receives the alerts (modules/alerts.bicep); empty for none. azd: ALERT_EMAIL.')
param alertEmail string = ''

@description('HTTPS webhook that receives the alerts in the common alert schema; empty for none. azd: ALERT_WEBHOOK_URL.')
param alertWebhookUrl string = ''

// The two sources of truth, read at compile time: edit those files, not this one.
var access = loadJsonContent('access.json')
var topology = loadJsonContent('servicebus-topology.json')

var tags = { 'azd-env-name': environmentName }
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: resourceGroup
  name: 'identity'
  params: {
    name: access.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: resourceGroup
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module serviceBus 'modules/service-bus.bicep' = {
  scope: resourceGroup
  name: 'service-bus'
  params: {
    name: '${topology.UserConfig.Namespaces[0].Name}-${resourceToken}'
    namespaceConfig: topology.UserConfig.Namespaces[0]
    location: location
    tags: tags
  }
}

module openAi 'modules/openai.bicep' = {
  scope: resourceGroup
  name: 'openai'
  params: {
    name: 'oai-${resourceToken}'
    deployments: [chatModel, embeddingsModel]
    location: location
    tags: tags
  }
}

module vision 'modules/vision.bicep' = {
  scope: resourceGroup
  name: 'vision'
  params: {
    name: 'cv-${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'modules/key-vault.bicep' = {
  scope: resourceGroup
  name: 'key-vault'
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
  }
}

module postgres 'modules/postgres.bicep' = {
  scope: resourceGroup
  name: 'postgres'
  params: {
    name: 'psql-${resourceToken}'
    databaseName: postgresDatabase
    principals: filter(access.?databasePrincipals ?? [], principal => principal.resource == 'postgres')
    identityName: access.identity
    identityPrincipalId: identity.outputs.principalId
    extensions: postgresExtensions
    location: location
    tags: tags
  }
}

module roleAssignments 'modules/access.bicep' = {
  scope: resourceGroup
  name: 'access'
  params: {
    principalId: identity.outputs.principalId
    assignments: access.assignments
    resourceNames: {
      serviceBus: serviceBus.outputs.name
      openAi: openAi.outputs.name
      vision: vision.outputs.name
      keyVault: keyVault.outputs.name
      appInsights: monitoring.outputs.appInsightsName
    }
  }
}

module alerts 'modules/alerts.bicep' = {
  scope: resourceGroup
  name: 'alerts'
  params: {
    location: location
    tags: tags
    actionGroupName: 'ag-${resourceToken}'
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
    appInsightsId: monitoring.outputs.appInsightsId
    serviceBusId: serviceBus.outputs.id
  }
}

module appServices 'modules/app-services.bicep' = {
  scope: resourceGroup
  name: 'app-services'
  params: {
    planName: 'plan-${resourceToken}'
    planSku: appServicePlanSku
    siteNamePrefix: 'app-'
    siteNameSuffix: '-${resourceToken}'
    linuxFxVersion: linuxFxVersion
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    appInsightsConnectionString: monitoring.outputs.connectionString
    appSettings: {
      // App Service routes traffic to the container's own address and sets PORT itself.
      HOST: '0.0.0.0'
      // The package carries its node_modules (tools/packager): a build on App Service would only redo it.
      SCM_DO_BUILD_DURING_DEPLOYMENT: 'false'
      AZURE_TENANT_ID: tenant().tenantId
      SERVICEBUS_FULLY_QUALIFIED_NAMESPACE: serviceBus.outputs.fullyQualifiedNamespace
      SERVICEBUS_NAMESPACE_RESOURCE_ID: serviceBus.outputs.id
      AZURE_OPENAI_ENDPOINT: openAi.outputs.endpoint
      AZURE_OPENAI_RESOURCE_ID: openAi.outputs.id
      AZURE_OPENAI_CHAT_DEPLOYMENT: chatModel.deployment
      AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT: embeddingsModel.deployment
      // No OPENAI_API_VERSION: the services call the api-version declared once, `openAiApiVersion` of @keyless/contracts.
      AZURE_VISION_ENDPOINT: vision.outputs.endpoint
      AZURE_VISION_RESOURCE_ID: vision.outputs.id
      // libpq's variables, read by node-postgres: the services sign in as the identity's role with an Entra token
      // as the password (no PGPASSWORD), over TLS verified against the platform's CAs.
      PGHOST: postgres.outputs.host
      PGPORT: '5432'
      PGDATABASE: postgres.outputs.databaseName
      PGUSER: access.identity
      PGSSLMODE: 'verify-full'
      POSTGRES_SERVER_RESOURCE_ID: postgres.outputs.id
      // Callers of the gateway request tokens for api://<app id>: v1 tokens carry that URI as audience, v2 the id.
      GATEWAY_AUDIENCE: 'api://${gatewayAppId}'
      GATEWAY_APP_ID: gatewayAppId
      // App Service's front end appends the client's address to X-Forwarded-For: the gateway's per-address limit trusts that one entry.
      TRUSTED_PROXY_HOPS: '1'
    }
    location: location
    tags: tags
  }
  // The apps start only once their identity holds its roles and is the database's Entra administrator, so a first
  // deployment does not greet the services with 401s (propagation can still take minutes; the services retry and
  // `npm run doctor` tells).
  dependsOn: [roleAssignments, postgres]
}

output AZURE_RESOURCE_GROUP string = resourceGroup.name
output KEYLESS_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output KEYLESS_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output SERVICEBUS_FULLY_QUALIFIED_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output SERVICEBUS_NAMESPACE_RESOURCE_ID string = serviceBus.outputs.id
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_OPENAI_RESOURCE_ID string = openAi.outputs.id
output AZURE_VISION_ENDPOINT string = vision.outputs.endpoint
output AZURE_VISION_RESOURCE_ID string = vision.outputs.id
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output PGHOST string = postgres.outputs.host
output PGDATABASE string = postgres.outputs.databaseName
output POSTGRES_SERVER_RESOURCE_ID string = postgres.outputs.id
output GATEWAY_AUDIENCE string = 'api://${gatewayAppId}'
output GATEWAY_URL string = 'https://${filter(appServices.outputs.hostNames, site => site.service == 'gateway')[0].hostName}'
