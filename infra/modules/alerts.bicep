// Azure Monitor alerts for the conditions the local Azure alerts on (libs/contracts/src/alert-rules.ts names each
// rule's counterpart here; the infra checks hold them together): denials and token failures of the shared identity,
// 401/403 answers of Azure OpenAI, Vision and Service Bus, a deleted role assignment, dead-lettered messages.
// Every rule notifies one action group, in the common alert schema. What each alert means and its fix: infra/README.md.
param location string
param tags object

@description('Name of the action group every alert notifies.')
param actionGroupName string

@description('Email address that receives alerts; empty for none.')
param alertEmail string = ''

@description('HTTPS webhook that receives alerts in the common alert schema; empty for none. Give a URL that carries no token: the repository holds no secret (README.md, "Alerts").')
param alertWebhookUrl string = ''

@description('Application Insights component the services send telemetry to (the scope of the log alerts).')
param appInsightsId string

@description('Service Bus namespace (the scope of the dead-letter alert).')
param serviceBusId string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'keyless'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operations-email'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      {
        name: 'operations-webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

// @keyless/auth counts every role refusal of a data plane (keyless.auth.access.denials, one point per AccessDeniedError,
// with the resource, role and data action) and records the AccessDeniedError on the active span; both reach
// Application Insights through the Azure Monitor exporter (customMetrics, exceptions).
var accessDeniedQuery = '''
union
  (customMetrics | where name == "keyless.auth.access.denials" | summarize Denials = sum(value) by cloud_RoleName, Resource = tostring(customDimensions["resource"]), Role = tostring(customDimensions["role"])),
  (exceptions | where type == "AccessDeniedError" | summarize Denials = sum(itemCount) by cloud_RoleName, Resource = "", Role = "")
| summarize Denials = sum(Denials) by cloud_RoleName, Resource, Role
'''

resource accessDeniedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-access-denied'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Access denied to the shared identity'
    description: 'A data plane refused the shared identity a data action (AccessDeniedError from @keyless/auth). Fix: restore the role the alert names (infra/access.json, then azd provision).'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: accessDeniedQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'Denials'
          dimensions: [
            { name: 'cloud_RoleName', operator: 'Include', values: ['*'] }
            { name: 'Resource', operator: 'Include', values: ['*'] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: [actionGroup.id] }
  }
}

// Dependency calls to the three data planes answered 401 or 403 (as the HTTP and Azure SDK instrumentations record them).
var dependencyDeniedQuery = '''
dependencies
| where success == false and resultCode in ("401", "403")
| where target has_any ("openai.azure.com", "cognitiveservices.azure.com", "servicebus.windows.net")
| summarize Failures = sum(itemCount) by cloud_RoleName, target, resultCode
'''

resource dependencyDeniedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-dependency-denied'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Azure OpenAI, Vision or Service Bus answered 401/403'
    description: 'Failed dependency calls to Azure OpenAI, Vision or Service Bus with 401 or 403: a missing role, or a token for the wrong audience. Fix: see the AccessDeniedError in the service log; restore the role.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: dependencyDeniedQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'Failures'
          dimensions: [
            { name: 'cloud_RoleName', operator: 'Include', values: ['*'] }
            { name: 'target', operator: 'Include', values: ['*'] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: [actionGroup.id] }
  }
}

// @keyless/auth counts failed token requests (keyless.auth.token.failures, with the audience and the error code).
var identityFailureQuery = '''
customMetrics
| where name == "keyless.auth.token.failures"
| summarize Failures = sum(value) by cloud_RoleName, Code = tostring(customDimensions["code"])
'''

resource identityFailureAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-identity-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Managed identity endpoint failing'
    description: 'Token requests of the shared identity failed (keyless.auth.token.failures). Fix: check that the identity is assigned to the App Service and AZURE_CLIENT_ID names it.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: identityFailureQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'Failures'
          dimensions: [
            { name: 'cloud_RoleName', operator: 'Include', values: ['*'] }
            { name: 'Code', operator: 'Include', values: ['*'] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true
    actions: { actionGroups: [actionGroup.id] }
  }
}

// Activity-log alerts are stateless: each deletion notifies once (there is no "resolved").
resource roleAssignmentDeletedAlert 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: 'alert-role-assignment-deleted'
  location: 'global'
  tags: tags
  properties: {
    description: 'A role assignment was deleted in the resource group. Fix: if not intended, re-deploy (azd provision re-creates every assignment of infra/access.json).'
    enabled: true
    scopes: [resourceGroup().id]
    condition: {
      allOf: [
        { field: 'category', equals: 'Administrative' }
        { field: 'operationName', equals: 'Microsoft.Authorization/roleAssignments/delete' }
        { field: 'status', equals: 'Succeeded' }
      ]
    }
    actions: { actionGroups: [{ actionGroupId: actionGroup.id }] }
  }
}

resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-dead-lettered-messages'
  location: 'global'
  tags: tags
  properties: {
    description: 'A queue or subscription holds dead-lettered messages. Fix: peek the dead-letter queue, fix the cause, resubmit or purge.'
    severity: 2
    enabled: true
    scopes: [serviceBusId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'DeadLetteredMessages'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }]
        }
      ]
    }
    autoMitigate: true
    actions: [{ actionGroupId: actionGroup.id }]
  }
}

output actionGroupId string = actionGroup.id
