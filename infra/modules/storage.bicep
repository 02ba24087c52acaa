// The storage account behind identity-based AzureWebJobsStorage: host state (blob), the app package (deployment
// container), the job container (job records, plans, blob checkpoints), the import queue and its poison queue.
// Shared keys are disabled, so every client (the Functions host, the app, a person dropping a message) signs in
// with Entra ID.
import { roleIds } from 'roles.bicep'

param location string
param tags object
param accountName string
@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string
@description('Queue carrying import requests and steps (IMPORT_QUEUE); `<name>-poison` is created beside it.')
param importQueueName string
@description('Blob container holding job records, plans and blob checkpoints (JOBS_CONTAINER).')
param jobsContainerName string
@description('Principal (object) ID of the app\'s managed identity.')
param appPrincipalId string
@description('Principal (object) ID allowed to add messages to the import queue; empty: nobody besides the app.')
param senderPrincipalId string = ''
@description('Its kind: User, Group or ServicePrincipal; empty: Resource Manager looks it up.')
param senderPrincipalType string = ''
@description('Log Analytics workspace for the diagnostic settings of the account and its services; empty: none.')
param logsWorkspaceId string = ''
@description('JOB_RETENTION_DAYS: the app deletes ended imports this many days after they ended; the lifecycle rule below deletes what is left in the jobs container a day later.')
@minValue(1)
@maxValue(3650)
param jobRetentionDays int = 30

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource jobsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobs
  name: jobsContainerName
  properties: { publicAccess: 'None' }
}

// Retention in Azure (lifecycle management: https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-overview,
// rule structure: https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-policy-structure, the delete
// action: https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-policy-delete). A policy is the one
// child named 'default'; a prefixMatch starts with the container's name. The rule deletes block blobs of the jobs
// container not modified for JOB_RETENTION_DAYS + 1 days: a backstop behind the app's own hourly pruning
// (lib/store/retention.ts), which goes first so that it can leave tombstones (IMPORT_EXPIRED), and which alone
// keeps the index in step. A running import rewrites its record at least every step and lives at most
// MAX_JOB_HOURS (≤ 30 days), so a rule counted from the last modification does not reach it before it ends —
// keep JOB_RETENTION_DAYS above MAX_JOB_HOURS / 24.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-import-jobs'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${jobsContainerName}/' ]
            }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: jobRetentionDays + 1 }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [ jobsContainer ]
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// The Functions host keeps diagnostic events in tables (Storage Table Data Contributor below).
resource tables 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
}

resource importQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-06-01' = {
  parent: queues
  name: importQueueName
}

// The host creates the poison queue on first use; creating it here lets alerts and people find it from day one.
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-06-01' = {
  parent: queues
  name: '${importQueueName}-poison'
}

// The app's identity: host storage and the job container need Blob Data Owner (leases, package, timer locks, job
// records); the queue trigger and the step re-enqueue need Queue Data Contributor (read, process, send, create
// `-poison`); the host's diagnostic events need Table Data Contributor.
var appRoles = [
  roleIds.storageBlobDataOwner
  roleIds.storageQueueDataContributor
  roleIds.storageTableDataContributor
]

resource appAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appRoles: {
    name: guid(account.id, appPrincipalId, roleId)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

// A person or pipeline may drop import requests on the queue (`az storage message put --auth-mode login`), and
// nothing more: the role is scoped to that one queue.
resource senderAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(senderPrincipalId)) {
  name: guid(importQueue.id, senderPrincipalId, roleIds.storageQueueDataMessageSender)
  scope: importQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageQueueDataMessageSender)
    principalId: senderPrincipalId
    principalType: empty(senderPrincipalType) ? null : senderPrincipalType
  }
}

// Diagnostic settings: the account itself has metrics only; the resource logs (StorageRead, StorageWrite,
// StorageDelete) belong to each service (Microsoft Learn: storage/blobs/monitor-blob-storage and
// storage/queues/monitor-queue-storage, "Collection and routing": diagnostic settings per service).
var storageLogs = [
  { category: 'StorageRead', enabled: true }
  { category: 'StorageWrite', enabled: true }
  { category: 'StorageDelete', enabled: true }
]
var storageMetrics = [{ category: 'Transaction', enabled: true }]

resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: account
  properties: { workspaceId: logsWorkspaceId, metrics: storageMetrics }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: blobs
  properties: { workspaceId: logsWorkspaceId, logs: storageLogs, metrics: storageMetrics }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: queues
  properties: { workspaceId: logsWorkspaceId, logs: storageLogs, metrics: storageMetrics }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: tables
  properties: { workspaceId: logsWorkspaceId, logs: storageLogs, metrics: storageMetrics }
}

output accountName string = account.name
// The endpoints as the account reports them (they differ by cloud and with Azure DNS zone endpoints), ending in `/`.
output blobServiceUri string = account.properties.primaryEndpoints.blob
output queueServiceUri string = account.properties.primaryEndpoints.queue
output tableServiceUri string = account.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
output importQueueName string = importQueue.name
output poisonQueueName string = poisonQueue.name
output jobsContainerName string = jobsContainer.name
