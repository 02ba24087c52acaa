// Alerts for the operator (docs/operations.md): log search alert rules on the Application Insights resource the
// template creates (modules/monitoring.bicep), and an optional action group that e-mails and/or calls a webhook.
//
// Microsoft Learn:
// - log search alert rules, the resource: https://learn.microsoft.com/azure/templates/microsoft.insights/scheduledqueryrules
//   (criteria.allOf: query, timeAggregation, metricMeasureColumn, operator, threshold; evaluationFrequency and
//   windowSize as ISO 8601 durations; severity 0–4, 0 the severest)
// - action groups, the resource: https://learn.microsoft.com/azure/templates/microsoft.insights/actiongroups
//   (emailReceivers, webhookReceivers; location 'global')
// - queue storage metrics: https://learn.microsoft.com/azure/storage/queues/monitor-queue-storage-reference —
//   QueueMessageCount is per account (no queue-name dimension) at a one-hour grain, so it cannot say "a message
//   in the poison queue"; and the app's importPoison function takes every poison message off that queue at once
//   anyway. The poison alert is therefore a log query on importPoison's invocations (the Functions host records
//   each one in App Insights' `requests` table under the function's name).
// - OpenTelemetry metrics sent through the Azure Monitor distro are custom metrics (`customMetrics`):
//   https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-add-modify — the failed-import rule reads
//   the app's own counter `oci_import.imports` there (its `outcome` attribute as a custom dimension; the column
//   names are the classic customMetrics schema, not confirmed here against a live workspace).

param location string
param tags object
@description('Resource ID of the Application Insights component the rules query.')
param appInsightsId string
@description('Name prefix of the rules and the action group.')
param namePrefix string
@description('Failed imports within an hour above which an alert fires.')
@minValue(0)
param failedImportsThreshold int = 5
@description('Failed function invocations within 15 minutes above which an alert fires.')
@minValue(0)
param functionFailuresThreshold int = 0
@description('E-mail address the action group notifies; empty: no e-mail receiver.')
param alertEmail string = ''
@description('Webhook the action group calls (its URL may hold a secret); empty: no webhook receiver.')
@secure()
param alertWebhookUrl string = ''

var notify = !empty(alertEmail) || !empty(alertWebhookUrl)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (notify) {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'ociimport'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [ { name: 'operator-email', emailAddress: alertEmail, useCommonAlertSchema: true } ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [ { name: 'operator-webhook', serviceUri: alertWebhookUrl, useCommonAlertSchema: true } ]
  }
}

var actions = notify ? { actionGroups: [ actionGroup.id ] } : { actionGroups: [] }

var rules = [
  {
    name: 'failed-imports'
    description: 'More than ${failedImportsThreshold} imports failed within an hour (the app\'s oci_import.imports counter, outcome failed).'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: 'customMetrics | where name == "oci_import.imports" | where tostring(customDimensions["outcome"]) == "failed" | summarize failed = sum(valueSum)'
    aggregation: 'Total'
    column: 'failed'
    threshold: failedImportsThreshold
  }
  {
    name: 'poison-message'
    description: 'A message reached the poison queue (<IMPORT_QUEUE>-poison): importPoison ran. A step failed every delivery, or a queued request was refused.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT5M'
    query: 'requests | where operation_Name =~ "importPoison"'
    aggregation: 'Count'
    column: ''
    threshold: 0
  }
  {
    name: 'function-failures'
    description: 'More than ${functionFailuresThreshold} function invocations failed within 15 minutes (App Insights requests with success false).'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'requests | where success == false'
    aggregation: 'Count'
    column: ''
    threshold: functionFailuresThreshold
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'oci-import: ${rule.name}'
    description: rule.description
    enabled: true
    severity: rule.severity
    scopes: [ appInsightsId ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    autoMitigate: true
    criteria: {
      allOf: [
        union({
          query: rule.query
          timeAggregation: rule.aggregation
          operator: 'GreaterThan'
          threshold: rule.threshold
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }, empty(rule.column) ? {} : { metricMeasureColumn: rule.column })
      ]
    }
    actions: actions
  }
}]

output actionGroupId string = notify ? actionGroup.id : ''
