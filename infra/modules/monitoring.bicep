// Log Analytics + Application Insights, both refusing key-based ingestion: telemetry is accepted only with an
// Entra token of an identity holding Monitoring Metrics Publisher on the component (see access.json).
param logAnalyticsName string
param appInsightsName string
param location string
param tags object

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
    features: {
      // No shared-key ingestion (Data Collector API) or key-based queries.
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    // The instrumentation key in the connection string identifies the component; with local auth disabled it
    // authorizes nothing, and every ingestion request needs a bearer token.
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
@description('Routes telemetry to this component; with local auth disabled its ikey authorizes nothing (README.md, "Telemetry without a key").')
output connectionString string = appInsights.properties.ConnectionString
