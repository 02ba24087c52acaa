metadata description = 'oci-import: a self-hosted, serverless `az acr import` on Azure Functions (Flex Consumption), next to its target container registry.'

// Deployed into one resource group: `azd up` (azd asks for the group, or reads AZURE_RESOURCE_GROUP) or
// `az deployment group create -g <group> -f infra/main.bicep -p environmentName=<name>`.
targetScope = 'resourceGroup'

import { permissionsModeType } from 'modules/roles.bicep'

// ----------------------------------------------------------------------------------------------------------------
// Where and what
// ----------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Environment name (azd: AZURE_ENV_NAME). Seeds the resource names and the azd-env-name tag.')
param environmentName string

@description('Region of every resource. Flex Consumption is offered in some regions only: `az functionapp list-flexconsumption-locations`.')
param location string = resourceGroup().location

@description('Object ID of a user, group or service principal that may add messages to the import queue (Storage Queue Data Message Sender on that queue only). azd passes the signed-in user. Empty: nobody besides the app.')
param principalId string = ''

// azd fills AZURE_PRINCIPAL_TYPE with User, or ServicePrincipal when it is signed in as one (azure-dev
// pkg/infra/provisioning/current_principal_id_provider.go). With principalType set, a role assignment does not
// fail on a principal that has not replicated yet (Microsoft Learn: role-based-access-control/
// role-assignments-template, "New service principal").
@description('Kind of principalId: User, Group or ServicePrincipal (azd: AZURE_PRINCIPAL_TYPE). Empty: Resource Manager looks it up.')
@allowed(['', 'User', 'Group', 'ServicePrincipal'])
param principalType string = ''

// ----------------------------------------------------------------------------------------------------------------
// Target registry and source registries
// ----------------------------------------------------------------------------------------------------------------

@description('true: create the target registry. false: use the existing registry named by registryName (registryResourceGroupName, registrySubscriptionId).')
param createRegistry bool = true

@description('Target registry name. When created: empty picks `cr<token>`. When existing: its name (required).')
param registryName string = ''

@description('Resource group of an existing target registry.')
param registryResourceGroupName string = resourceGroup().name

@description('Subscription of an existing target registry.')
param registrySubscriptionId string = subscription().subscriptionId

@description('SKU of a created registry. A private endpoint (registryPrivateEndpointSubnetId) or registryPublicNetworkAccess Disabled makes it Premium.')
@allowed(['Basic', 'Standard', 'Premium'])
param registrySku string = 'Standard'

@description('Role assignment permissions mode of the target registry. rbac: classic mode, the app gets AcrPush. abac: "RBAC Registry + ABAC Repository Permissions" mode, where AcrPush is not honoured; the app gets Container Registry Repository Writer. both: the two (an existing registry about to switch). A created registry is set to this mode (both → classic).')
param registryPermissionsMode permissionsModeType = 'rbac'

@description('Registries images are copied from, each `{ id: "<registry resource ID>", permissionsMode?: "rbac" | "abac" | "both" }`: the app gets AcrPull, or Container Registry Repository Reader in ABAC mode. Public and non-Azure sources need nothing here.')
param sourceRegistries sourceRegistry[] = []

@description('A registry the app reads from.')
type sourceRegistry = {
  @description('ARM resource ID: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name>')
  id: string
  @description('The registry\'s role assignment permissions mode; default rbac.')
  permissionsMode: permissionsModeType?
  @description('true: the registry is reached through a private endpoint in the app\'s virtual network, so its login server and data endpoints may resolve to private addresses for requests naming it by this resource ID (PRIVATE_SOURCE_REGISTRIES). Takes effect only with virtualNetworkSubnetId.')
  privateEndpoint: bool?
}

// ----------------------------------------------------------------------------------------------------------------
// Network-restricted registries
// ----------------------------------------------------------------------------------------------------------------

@description('Resource ID of a subnet delegated to Microsoft.App/environments. The app then sends its outbound traffic through that virtual network and reaches registries that accept only private-endpoint or firewall-listed traffic. Empty: no virtual network integration.')
param virtualNetworkSubnetId string = ''

@description('Created registry only: resource ID of a subnet to place a private endpoint of the registry in (makes the registry Premium). Empty: none.')
param registryPrivateEndpointSubnetId string = ''

@description('Created registry only: an existing private DNS zone `privatelink.azurecr.io` to register the private endpoint in. Empty: a zone is created and linked to the endpoint subnet\'s virtual network.')
param registryPrivateDnsZoneId string = ''

@description('Created registry only: public network access. Disabled makes the registry Premium (the only tier that can turn its public endpoint off) and needs registryPrivateEndpointSubnetId and virtualNetworkSubnetId in a virtual network that resolves the private DNS zone.')
@allowed(['Enabled', 'Disabled'])
param registryPublicNetworkAccess string = 'Enabled'

// ----------------------------------------------------------------------------------------------------------------
// Function app
// ----------------------------------------------------------------------------------------------------------------

// The majors Microsoft lists as supported for Functions (Node.js 20's support ended 2026-04-30); the app is tested
// on this one (CI runs the local-host end-to-end tests on Node.js 22 as well).
@description('Node.js major version of the Functions runtime (functionAppConfig.runtime.version).')
@allowed(['22'])
param nodeVersion string = '22'

// 512 MB by measurement: the worker peaked near 220 MB running host.json's six steps at once, 300 MB images
// each (docs/benchmarks.md, "One instance of the service"); CPU comes in proportion (0.25 of a core), so a
// CPU-bound copy costs the same GB-s per byte at every size and one that waits on a far registry costs less.
@description('Memory of each instance (MB); Flex Consumption bills execution time by this size, and gives CPU in proportion.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 512

// The lowest maximum Flex Consumption takes is the platform's to check: Microsoft Learn's Flex Consumption page
// said 40 in the versions read for this template (flex-consumption-plan#considerations, 2025) and is reported to
// say 1 now (unconfirmed); 1000 is the documented highest. The template accepts 1 to 1000.
@description('Most instances the app scales out to (1-1000; the platform refuses a value below its current lowest maximum).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

// ----------------------------------------------------------------------------------------------------------------
// App settings: one parameter per setting of lib/config.ts SETTINGS (scope 'app'), same defaults
// ----------------------------------------------------------------------------------------------------------------

@description('TARGET_AUTH: how the app signs in to the target registry.')
@allowed(['managed-identity', 'basic', 'anonymous'])
param targetAuth string = 'managed-identity'

@description('TARGET_USERNAME: username for a target registry that takes basic or token auth; empty with managed-identity.')
param targetUsername string = ''

@secure()
@description('TARGET_PASSWORD: password or token going with targetUsername; stored in Key Vault.')
param targetPassword string = ''

@description('IMPORT_QUEUE: storage queue of import requests and steps (`<name>-poison` is created too).')
@minLength(3)
@maxLength(56)
param importQueueName string = 'imports'

@description('JOBS_CONTAINER: blob container of job records, plans and blob checkpoints.')
@minLength(3)
@maxLength(63)
param jobsContainerName string = 'importjobs'

@description('CHUNK_SIZE: bytes per upload PATCH (`8MiB`, `512KiB`, or bytes). Empty: a blob step streams a new upload session as one PATCH until its budget ends it, and later steps send 8 MiB PATCHes.')
param chunkSize string = ''

// host.json sets functionTimeout to 10 minutes. A timed-out invocation restarts the whole Node worker and kills
// every other invocation on it, so a step must end well before: at most half the timeout, which leaves room for
// the last chunk in flight (CHUNK_SIZE over a slow link) and for saving the step's state. test/infra checks this
// bound against host.json.
@description('STEP_BUDGET_SECONDS: a queue step stops copying after this long, saves its place and re-enqueues the rest. At most half of host.json functionTimeout (10 min).')
@minValue(10)
@maxValue(300)
param stepBudgetSeconds int = 120

@description('MAX_MANIFESTS: largest index (child manifests) an import accepts.')
@minValue(1)
@maxValue(10000)
param maxManifests int = 50

@description('MAX_BLOBS: unique blobs one import may copy, over all platforms (TOO_MANY_BLOBS when planned).')
@minValue(1)
@maxValue(100000)
param maxBlobs int = 1000

@description('MAX_IMPORT_BYTES: sum of one import\'s unique blob sizes (`100GiB`, or bytes; IMPORT_TOO_LARGE when planned).')
param maxImportBytes string = '100GiB'

@description('INLINE_IMPORT_BYTES: an import of at most this size and 16 blobs is copied in its plan step, a larger one copies its small blobs (up to 16 of at most 1 MiB within this size) there (`16MiB`, or bytes; `0` always fans out).')
param inlineImportBytes string = '16MiB'

@description('MAX_TAGS: tags a sync rule may list in one source repository (TOO_MANY_TAGS).')
@minValue(1)
@maxValue(1000000)
param maxTags int = 10000

@description('SYNC_CONCURRENCY: tags a sync pass compares and enqueues at once, over all rules.')
@minValue(1)
@maxValue(64)
param syncConcurrency int = 8

@description('SYNC_PASS_SECONDS: a sync pass lists and compares tags for at most this long (below functionTimeout).')
@minValue(1)
@maxValue(3600)
param syncPassSeconds int = 300

@description('REQUEST_TIMEOUT_SECONDS: a registry request without answer headers, or a body without a byte, for this long ends (TIMEOUT).')
@minValue(1)
@maxValue(600)
param requestTimeoutSeconds int = 30

@description('MIN_BYTES_PER_SECOND: slowest body accepted, averaged over 30 s (`64KiB`, or bytes; TIMEOUT).')
param minBytesPerSecond string = '64KiB'

@description('MAX_RETRY_AFTER_SECONDS: longest Retry-After honoured by re-enqueueing the step (status waiting); longer fails with RATE_LIMITED.')
@minValue(0)
@maxValue(604800)
param maxRetryAfterSeconds int = 3600

@description('MAX_JOB_HOURS: an import not finished after this many hours fails with JOB_EXPIRED.')
@minValue(1)
@maxValue(720)
param maxJobHours int = 24

@description('JOB_RETENTION_DAYS: ended imports (records, index entries) are deleted this many days after they ended; a storage lifecycle rule deletes what is left a day later.')
@minValue(1)
@maxValue(3650)
param jobRetentionDays int = 30

@description('TARGET_REPOSITORIES: comma list of target repository patterns this deployment may write (`*` matches anything, `/` included: `mirror/*`). For defence in depth, also give the identity repository-scoped ABAC role conditions on the registry (docs/security.md).')
param targetRepositories string = '*'

@description('BLOB_CONCURRENCY: blobs copied at the same time within one import.')
@minValue(1)
@maxValue(64)
param blobConcurrency int = 4

@description('FETCH_CONCURRENCY: concurrent ranged GETs (4 MiB parts) per blob.')
@minValue(1)
@maxValue(64)
param fetchConcurrency int = 8

@description('COPY_MEMORY: blob bytes a worker holds at most while copying, over all blobs at once (`MiB` suffix).')
param copyMemory string = '16MiB'

@description('ALLOWED_SOURCES: comma list of `host[:port]` patterns sources may use (`*`: any public host).')
param allowedSources string = '*'

@description('INSECURE_REGISTRIES: comma list of `host[:port]` reached over plain HTTP; keep empty in Azure.')
param insecureRegistries string = ''

@description('ACR_AUDIENCE: Entra ID audience of the tokens the app exchanges at Azure Container Registries. Sovereign clouds: that cloud\'s ACR audience, or its Resource Manager audience (accepted unless the registry disables authentication-as-arm).')
param acrAudience string = 'https://containerregistry.azure.net'

@description('ARM_ENDPOINT: Resource Manager endpoint that resolves source registries given by resource ID; default: this deployment\'s cloud.')
param armEndpoint string = environment().resourceManager

@description('AUTH_MODE: who may call the HTTP functions: `keys` (function keys) or `entra` (Entra ID bearer tokens with the app roles Imports.Read / Imports.Write, checked by the app; docs/security.md "Ways in").')
@allowed([
  'keys'
  'entra'
])
param authMode string = 'keys'

@description('ENTRA_TENANT_ID: with authMode entra, the directory (tenant) ID whose tokens are accepted; default: this deployment\'s tenant.')
param entraTenantId string = tenant().tenantId

@description('ENTRA_AUDIENCE: with authMode entra, required: the API app registration\'s application ID URI (api://...) and/or client ID, comma-separated.')
param entraAudience string = ''

@description('ENTRA_AUTHORITY_HOST: the Entra ID authority of this cloud (its OpenID configuration names the signing keys).')
param entraAuthorityHost string = environment().authentication.loginEndpoint

@description('SYNC_SCHEDULE: NCRONTAB schedule (UTC) of the sync timer.')
param syncSchedule string = '0 0 * * * *'

@description('SYNC_RULES: sync rules as inline JSON; empty: no sync rules.')
param syncRules string = ''

@secure()
@description('CREDENTIAL_KEY: base64 of 32 random bytes, written to the Key Vault secret credential-key. azd makes one once per environment (azure.yaml preprovision hook) and passes it on every deployment. Empty: the secret is left as it is, so a deployment that does not pass the key never rotates it (the first deployment must pass one).')
param credentialKey string = ''

@secure()
@description('MESSAGE_KEY: base64 of 32 random bytes, written to the Key Vault secret message-key: the app authenticates its own queue step messages and list continuation tokens with it. azd makes one once per environment (azure.yaml preprovision hook). Empty: the secret is left as it is (the first deployment must pass one).')
param messageKey string = ''

@secure()
@description('MESSAGE_KEY_PREVIOUS: during a rotation, the key MESSAGE_KEY held before (messages it made are still accepted); written to the secret message-key-previous. Empty: none.')
param messageKeyPrevious string = ''

@description('Named registry credentials a request may refer to (`"credential": "<name>"`): `{ "<name>": "<username>" }`, names of letters, digits and underscores. Each becomes REGISTRY_CREDENTIALS__<name>__USERNAME.')
param registryCredentialUsernames object = {}

@secure()
@description('The passwords or tokens of those credentials, `{ "<name>": "<password>" }`: stored in Key Vault, each REGISTRY_CREDENTIALS__<name>__PASSWORD a Key Vault reference.')
param registryCredentialPasswords object = {}

@description('Where each of those credentials may be sent, `{ "<name>": "docker.io,auth.docker.io" }` (host patterns of registries and token endpoints; required for every credential, the app refuses to start otherwise). Each becomes REGISTRY_CREDENTIALS__<name>__REGISTRIES.')
param registryCredentialRegistries object = {}

// ----------------------------------------------------------------------------------------------------------------
// Operations
// ----------------------------------------------------------------------------------------------------------------

@description('Diagnostic settings: Key Vault, storage, the created registry and the function app send their resource logs and metrics to the Log Analytics workspace. Storage logs include every queue poll of the Functions host.')
param diagnosticSettings bool = true

@description('Alerts (modules/alerts.bicep): failed imports within an hour above which an alert fires.')
@minValue(0)
param failedImportsAlertThreshold int = 5

@description('Alerts: an e-mail address to notify (an action group is made when this or alertWebhookUrl is set); empty: the rules fire without notifying anyone.')
param alertEmail string = ''

@description('Alerts: a webhook to call (its URL may hold a secret); empty: none.')
@secure()
param alertWebhookUrl string = ''

@description('Key Vault purge protection: a deleted vault or secret cannot be purged before its retention (90 days) ends. Irreversible: once on, it stays on, and `azd down --purge` cannot free the vault name.')
param keyVaultPurgeProtection bool = false

// ----------------------------------------------------------------------------------------------------------------
// Names
// ----------------------------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = { 'azd-env-name': environmentName }
var targetRegistryName = !empty(registryName) ? registryName : 'cr${token}'

// ----------------------------------------------------------------------------------------------------------------
// Resources (module deployment names carry the token too, so two environments can share a resource group)
// ----------------------------------------------------------------------------------------------------------------

// One user-assigned identity for everything the app signs in to. Unlike a system-assigned one it exists before
// the app, so every role assignment is in place when the app first starts.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-${token}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring-${token}'
  params: {
    location: location
    tags: tags
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
    appPrincipalId: identity.properties.principalId
  }
}

// What the operator is told: failed imports, poison messages, function failures (docs/operations.md).
module alerts 'modules/alerts.bicep' = {
  name: 'alerts-${token}'
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    namePrefix: 'oci-import-${token}'
    failedImportsThreshold: failedImportsAlertThreshold
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
  }
}

// Where the diagnostic settings send logs; empty: none.
var logsWorkspaceId = diagnosticSettings ? monitoring.outputs.workspaceId : ''

module storage 'modules/storage.bicep' = {
  name: 'storage-${token}'
  params: {
    location: location
    tags: tags
    accountName: 'st${token}'
    deploymentContainerName: 'app-package-${token}'
    importQueueName: importQueueName
    jobsContainerName: jobsContainerName
    appPrincipalId: identity.properties.principalId
    senderPrincipalId: principalId
    senderPrincipalType: principalType
    logsWorkspaceId: logsWorkspaceId
    jobRetentionDays: jobRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault-${token}'
  params: {
    location: location
    tags: tags
    vaultName: 'kv-${token}'
    appPrincipalId: identity.properties.principalId
    credentialKey: credentialKey
    messageKey: messageKey
    storeMessageKeyPrevious: !empty(messageKeyPrevious)
    messageKeyPrevious: messageKeyPrevious
    purgeProtection: keyVaultPurgeProtection
    logsWorkspaceId: logsWorkspaceId
    storeTargetPassword: !empty(targetUsername)
    targetPassword: targetPassword
    registryCredentialNames: objectKeys(registryCredentialUsernames)
    registryCredentialPasswords: registryCredentialPasswords
  }
}

module registry 'modules/registry.bicep' = if (createRegistry) {
  name: 'registry-${token}'
  params: {
    location: location
    tags: tags
    registryName: targetRegistryName
    sku: registrySku
    permissionsMode: registryPermissionsMode
    publicNetworkAccess: registryPublicNetworkAccess
    privateEndpointSubnetId: registryPrivateEndpointSubnetId
    privateDnsZoneId: registryPrivateDnsZoneId
    logsWorkspaceId: logsWorkspaceId
  }
}

// Push rights on the target registry, created here or existing anywhere the deployer may assign roles.
module targetAccess 'modules/registry-access.bicep' = {
  name: 'target-registry-access-${token}'
  scope: resourceGroup(createRegistry ? subscription().subscriptionId : registrySubscriptionId, createRegistry ? resourceGroup().name : registryResourceGroupName)
  params: {
    // An existing registry must be named; the placeholder makes ARM's "not found" error say so.
    registryName: createRegistry ? registry!.outputs.name : (empty(registryName) ? 'registryName-is-required-when-createRegistry-is-false' : registryName)
    appPrincipalId: identity.properties.principalId
    access: 'push'
    permissionsMode: registryPermissionsMode
  }
}

module sourceAccess 'modules/registry-access.bicep' = [
  for (source, i) in sourceRegistries: {
    name: 'source-registry-access-${i}-${token}'
    scope: resourceGroup(split(source.id, '/')[2], split(source.id, '/')[4])
    params: {
      registryName: last(split(source.id, '/'))
      appPrincipalId: identity.properties.principalId
      access: 'pull'
      permissionsMode: source.?permissionsMode ?? 'rbac'
    }
  }
]

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app-${token}'
  params: {
    location: location
    tags: tags
    planName: 'plan-${token}'
    appName: 'func-${token}'
    identityId: identity.id
    identityClientId: identity.properties.clientId
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    nodeVersion: nodeVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    virtualNetworkSubnetId: virtualNetworkSubnetId
    appInsightsName: monitoring.outputs.appInsightsName
    logsWorkspaceId: logsWorkspaceId
    // Every setting the app reads (lib/config.ts SETTINGS, scope 'app'); the module adds the two Application
    // Insights settings the platform reads. Secrets only as Key Vault references. test/infra compares these
    // names with SETTINGS.
    appSettings: {
      // Identity-based host storage: no connection string, no key. The service URIs come from the account's
      // primaryEndpoints: `__accountName` works only outside sovereign clouds and without custom DNS (Microsoft Learn:
      // azure-functions/functions-reference#connecting-to-host-storage-with-an-identity); Microsoft's azd
      // TypeScript quickstart (Azure-Samples/functions-quickstart-typescript-azd, infra/app/api.bicep) does the same.
      AzureWebJobsStorage__blobServiceUri: storage.outputs.blobServiceUri
      AzureWebJobsStorage__queueServiceUri: storage.outputs.queueServiceUri
      AzureWebJobsStorage__tableServiceUri: storage.outputs.tableServiceUri
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      AZURE_CLIENT_ID: identity.properties.clientId
      TARGET_REGISTRY: targetAccess.outputs.loginServer
      TARGET_AUTH: targetAuth
      TARGET_USERNAME: targetUsername
      TARGET_PASSWORD: keyVault.outputs.references.TARGET_PASSWORD
      CREDENTIAL_KEY: keyVault.outputs.references.CREDENTIAL_KEY
      MESSAGE_KEY: keyVault.outputs.references.MESSAGE_KEY
      MESSAGE_KEY_PREVIOUS: keyVault.outputs.references.MESSAGE_KEY_PREVIOUS
      IMPORT_QUEUE: storage.outputs.importQueueName
      JOBS_CONTAINER: storage.outputs.jobsContainerName
      CHUNK_SIZE: chunkSize
      STEP_BUDGET_SECONDS: string(stepBudgetSeconds)
      MAX_MANIFESTS: string(maxManifests)
      MAX_BLOBS: string(maxBlobs)
      MAX_IMPORT_BYTES: maxImportBytes
      INLINE_IMPORT_BYTES: inlineImportBytes
      MAX_TAGS: string(maxTags)
      SYNC_CONCURRENCY: string(syncConcurrency)
      SYNC_PASS_SECONDS: string(syncPassSeconds)
      REQUEST_TIMEOUT_SECONDS: string(requestTimeoutSeconds)
      MIN_BYTES_PER_SECOND: minBytesPerSecond
      MAX_RETRY_AFTER_SECONDS: string(maxRetryAfterSeconds)
      MAX_JOB_HOURS: string(maxJobHours)
      JOB_RETENTION_DAYS: string(jobRetentionDays)
      TARGET_REPOSITORIES: targetRepositories
      BLOB_CONCURRENCY: string(blobConcurrency)
      FETCH_CONCURRENCY: string(fetchConcurrency)
      COPY_MEMORY: copyMemory
      ACR_AUDIENCE: acrAudience
      ARM_ENDPOINT: armEndpoint
      ALLOWED_SOURCES: allowedSources
      // Only with virtual network integration: without it the app cannot reach a private endpoint anyway.
      PRIVATE_SOURCE_REGISTRIES: empty(virtualNetworkSubnetId) ? '' : join(map(filter(sourceRegistries, source => source.?privateEndpoint ?? false), source => source.id), ',')
      INSECURE_REGISTRIES: insecureRegistries
      AUTH_MODE: authMode
      ENTRA_TENANT_ID: authMode == 'entra' ? entraTenantId : ''
      ENTRA_AUDIENCE: entraAudience
      ENTRA_AUTHORITY_HOST: entraAuthorityHost
      SYNC_SCHEDULE: syncSchedule
      SYNC_RULES: syncRules
    }
    // The setting families REGISTRY_CREDENTIALS__<name>__USERNAME and __REGISTRIES (plain, as TARGET_USERNAME) and
    // __PASSWORD (Key Vault references), one set per named credential.
    credentialSettings: union(
      toObject(objectKeys(registryCredentialUsernames), name => 'REGISTRY_CREDENTIALS__${name}__USERNAME', name => string(registryCredentialUsernames[name])),
      toObject(objectKeys(registryCredentialRegistries), name => 'REGISTRY_CREDENTIALS__${name}__REGISTRIES', name => string(registryCredentialRegistries[name])),
      keyVault.outputs.registryCredentialReferences
    )
  }
}

// ----------------------------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment: `azd env get-values`)
// ----------------------------------------------------------------------------------------------------------------

@description('Base URL of the HTTP API: POST <url>/imports, GET <url>/imports/<id> (with a function key).')
output FUNCTION_BASE_URL string = 'https://${functionApp.outputs.defaultHostName}/api'
@description('Login server of the target registry (TARGET_REGISTRY).')
output REGISTRY_LOGIN_SERVER string = targetAccess.outputs.loginServer
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
@description('Resource ID of the function app (the postprovision hook reads its Key Vault reference status).')
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.accountName
output IMPORT_QUEUE string = storage.outputs.importQueueName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.vaultName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
