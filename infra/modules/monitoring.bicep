// Log Analytics workspace + workspace-based Application Insights with local (key) authentication off: the app
// sends telemetry with its managed identity, which needs Monitoring Metrics Publisher on the component.
import { roleIds } from 'roles.bicep'

param location string
param tags object
param workspaceName string
param appInsightsName string
@description('Principal (object) ID of the app\'s managed identity.')
param appPrincipalId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource publishMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roleIds.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output appInsightsName string = appInsights.name
output appInsightsId string = appInsights.id
@description('The Log Analytics workspace diagnostic settings send resource logs to.')
output workspaceId string = workspace.id
