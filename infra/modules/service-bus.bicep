// The Service Bus namespace and its entities, created from the topology file (the official emulator's
// Config.json format, which the local broker reads too). Nothing here names an entity: add or change one in
// servicebus-topology.json.
@description('Namespace name (globally unique).')
param name string

@description('One namespace of servicebus-topology.json (UserConfig.Namespaces[i]): Queues, Topics → Subscriptions → Rules.')
param namespaceConfig object

param location string
param tags object

var queues = namespaceConfig.?Queues ?? []
var topics = namespaceConfig.?Topics ?? []
var subscriptions = flatten(map(topics, topic => map(topic.?Subscriptions ?? [], subscription => {
  topic: topic.Name
  name: subscription.Name
  properties: subscription.?Properties ?? {}
  rules: subscription.?Rules ?? []
})))
var rules = flatten(map(subscriptions, subscription => map(subscription.rules, rule => {
  topic: subscription.topic
  subscription: subscription.name
  name: rule.Name
  properties: rule.?Properties ?? {}
})))
// The emulator's FilterType is Correlation or Sql; ARM's is CorrelationFilter or SqlFilter.
var correlationFilterRules = filter(rules, rule => rule.properties.FilterType == 'Correlation')
var sqlFilterRules = filter(rules, rule => rule.properties.FilterType == 'Sql')
// Every subscription is created with a catch-all `$Default` rule (TrueFilter). A subscription whose topology
// declares rules must receive only what they select, so its `$Default` is replaced by a filter that matches nothing.
var filteredSubscriptions = filter(subscriptions, subscription => !empty(subscription.rules))

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' } // topics need Standard or Premium
  properties: {
    // No SAS keys: every client authenticates with an Entra token and is authorized by its role assignments.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queueEntities 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for queue in queues: {
  parent: serviceBus
  name: queue.Name
  properties: {
    lockDuration: queue.?Properties.?LockDuration
    maxDeliveryCount: queue.?Properties.?MaxDeliveryCount
    defaultMessageTimeToLive: queue.?Properties.?DefaultMessageTimeToLive
    deadLetteringOnMessageExpiration: queue.?Properties.?DeadLetteringOnMessageExpiration
    requiresSession: queue.?Properties.?RequiresSession
    requiresDuplicateDetection: queue.?Properties.?RequiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: queue.?Properties.?DuplicateDetectionHistoryTimeWindow
    forwardTo: queue.?Properties.?ForwardTo
    forwardDeadLetteredMessagesTo: queue.?Properties.?ForwardDeadLetteredMessagesTo
  }
}]

resource topicEntities 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = [for topic in topics: {
  parent: serviceBus
  name: topic.Name
  properties: {
    defaultMessageTimeToLive: topic.?Properties.?DefaultMessageTimeToLive
    requiresDuplicateDetection: topic.?Properties.?RequiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: topic.?Properties.?DuplicateDetectionHistoryTimeWindow
  }
}]

resource subscriptionEntities 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [for subscription in subscriptions: {
  name: '${serviceBus.name}/${subscription.topic}/${subscription.name}'
  properties: {
    lockDuration: subscription.properties.?LockDuration
    maxDeliveryCount: subscription.properties.?MaxDeliveryCount
    defaultMessageTimeToLive: subscription.properties.?DefaultMessageTimeToLive
    deadLetteringOnMessageExpiration: subscription.properties.?DeadLetteringOnMessageExpiration
    requiresSession: subscription.properties.?RequiresSession
    forwardTo: subscription.properties.?ForwardTo
    forwardDeadLetteredMessagesTo: subscription.properties.?ForwardDeadLetteredMessagesTo
  }
  dependsOn: [topicEntities]
}]

resource correlationRules 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [for rule in correlationFilterRules: {
  name: '${serviceBus.name}/${rule.topic}/${rule.subscription}/${rule.name}'
  properties: {
    filterType: 'CorrelationFilter'
    correlationFilter: {
      label: rule.properties.CorrelationFilter.?Label
      correlationId: rule.properties.CorrelationFilter.?CorrelationId
      messageId: rule.properties.CorrelationFilter.?MessageId
      to: rule.properties.CorrelationFilter.?To
      replyTo: rule.properties.CorrelationFilter.?ReplyTo
      sessionId: rule.properties.CorrelationFilter.?SessionId
      replyToSessionId: rule.properties.CorrelationFilter.?ReplyToSessionId
      contentType: rule.properties.CorrelationFilter.?ContentType
      properties: rule.properties.CorrelationFilter.?Properties
    }
    action: contains(rule.properties, 'Action') ? { sqlExpression: rule.properties.Action.SqlExpression } : null
  }
  dependsOn: [subscriptionEntities]
}]

resource sqlRules 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [for rule in sqlFilterRules: {
  name: '${serviceBus.name}/${rule.topic}/${rule.subscription}/${rule.name}'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: { sqlExpression: rule.properties.SqlFilter.SqlExpression }
    action: contains(rule.properties, 'Action') ? { sqlExpression: rule.properties.Action.SqlExpression } : null
  }
  dependsOn: [subscriptionEntities]
}]

resource defaultRuleOverrides 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [for subscription in filteredSubscriptions: {
  name: '${serviceBus.name}/${subscription.topic}/${subscription.name}/$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: { sqlExpression: '1=0' }
  }
  dependsOn: [subscriptionEntities]
}]

output name string = serviceBus.name
output id string = serviceBus.id
// serviceBusEndpoint is `https://<name>.servicebus.windows.net:443/` (another suffix in sovereign clouds).
@description('Host name clients connect to (AMQP over TLS), e.g. sb-keyless-abc.servicebus.windows.net.')
output fullyQualifiedNamespace string = split(split(serviceBus.properties.serviceBusEndpoint, '//')[1], ':')[0]
