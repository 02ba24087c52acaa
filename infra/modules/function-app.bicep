// The function app on a Flex Consumption plan: Node runtime, one user-assigned identity for everything (host
// storage, package deployment, Key Vault references, Application Insights, registries), HTTPS only, TLS 1.2+,
// FTP and basic publishing credentials off (through basicPublishingCredentialsPolicies: Flex Consumption refuses
// siteConfig.ftpsState, and the other site properties and app settings test/infra/flex-refused.test.ts lists).

param location string
param tags object
param planName string
param appName string
@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string
@description('Client ID of that identity.')
param identityClientId string
@description('URL of the blob container the app package is deployed to.')
param deploymentContainerUrl string
@allowed(['22'])
param nodeVersion string
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int
@description('Subnet (delegated to Microsoft.App/environments) for outbound virtual network integration; empty: none.')
param virtualNetworkSubnetId string
@description('Application Insights component the app sends telemetry to (with its identity; local auth is off).')
param appInsightsName string
@description('Log Analytics workspace for the app\'s diagnostic settings; empty: none.')
param logsWorkspaceId string
@description('The app\'s own settings, name → value. Secrets arrive here only as Key Vault references.')
param appSettings object
@description('The named registry credentials\' settings (REGISTRY_CREDENTIALS__<name>__USERNAME / __PASSWORD), name → value.')
param credentialSettings object

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The Functions host's request body cap (default 100 MB; above it Kestrel answers an empty 413). The app refuses bodies
// over 64 KiB itself (lib/request/request.ts MAX_REQUEST_BYTES) with a JSON 413 naming the limit: a cap of 1 MiB lets every
// body up to 16 times that reach the app, so that JSON answer is what callers see, and the host drops anything larger.
var requestBodySizeLimit = 1048576

// Read by the platform, not by the app: where to send telemetry and how to sign in to it (the connection string
// names the component; it is no credential: with local auth off, ingestion takes the identity's Entra token), and
// the HTTP request body cap.
var platformSettings = [
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  { name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', value: string(requestBodySizeLimit) }
]

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  // azd finds the app to deploy to by this tag (azure.yaml: services.api).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: { name: 'node', version: nodeVersion }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(
        platformSettings,
        map(items(appSettings), setting => { name: setting.key, value: setting.value }),
        map(items(credentialSettings), setting => { name: setting.key, value: setting.value })
      )
    }
  }
}

// FTP and SCM basic-auth publishing off: azd deploys a Flex app with an Entra ID token.
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

// FunctionAppLogs: the host's and the functions' log stream (Microsoft Learn: azure-functions/
// functions-monitor-log-analytics). Earlier versions of the Flex Consumption page listed diagnostic settings as not
// supported; its current Considerations no longer do (flex-consumption-plan#considerations).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: app
  properties: {
    workspaceId: logsWorkspaceId
    logs: [{ category: 'FunctionAppLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output name string = app.name
output id string = app.id
output defaultHostName string = app.properties.defaultHostName
