// Key Vault (RBAC authorization) holding the app's secrets. App settings point at them as Key Vault references,
// resolved by the platform with the app's user-assigned identity, so no secret value is ever an app setting.
// The vault keeps its public endpoint, guarded by Entra ID + RBAC: this template makes no private endpoint for it.
import { roleIds } from 'roles.bicep'

param location string
param tags object
param vaultName string
@description('Principal (object) ID of the app\'s managed identity (gets Key Vault Secrets User).')
param appPrincipalId string

@secure()
@description('CREDENTIAL_KEY: base64 of 32 random bytes (AES-256-GCM key for inline credentials at rest). Empty: the secret credential-key is left as it is (never rotated by a deployment that does not pass a key).')
param credentialKey string

@secure()
@description('MESSAGE_KEY: base64 of 32 random bytes (HMAC-SHA256 key of the app\'s own queue messages and list tokens). Empty: the secret message-key is left as it is.')
param messageKey string

@description('Store MESSAGE_KEY_PREVIOUS (only during a rotation).')
param storeMessageKeyPrevious bool

@secure()
@description('MESSAGE_KEY_PREVIOUS: the key MESSAGE_KEY held before a rotation, still accepted.')
param messageKeyPrevious string

@description('Purge protection (irreversible once on).')
param purgeProtection bool

@description('Log Analytics workspace for the vault\'s diagnostic settings; empty: none.')
param logsWorkspaceId string

@description('Store TARGET_PASSWORD (only when the target registry takes a username and password).')
param storeTargetPassword bool

@secure()
@description('TARGET_PASSWORD: password or token for the target registry.')
param targetPassword string

@description('Names of the named registry credentials (REGISTRY_CREDENTIALS__<name>__*).')
param registryCredentialNames string[]

@secure()
@description('Their passwords or tokens, { "<name>": "<password>" }: one secret each.')
param registryCredentialPasswords object

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    // "does not accept false as its value" (Microsoft.KeyVault/vaults template reference): true, or left out.
    enablePurgeProtection: purgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
  }
}

// Written only when a key is passed: a deployment without one keeps the secret (and the key in-flight jobs sealed
// their credentials with) as it is.
resource credentialKeySecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(credentialKey)) {
  parent: vault
  name: 'credential-key'
  properties: {
    value: credentialKey
    contentType: 'base64 AES-256 key (CREDENTIAL_KEY)'
  }
}

// As credential-key: written only when a key is passed, so a deployment without one never rotates it.
resource messageKeySecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(messageKey)) {
  parent: vault
  name: 'message-key'
  properties: {
    value: messageKey
    contentType: 'base64 HMAC-SHA256 key (MESSAGE_KEY)'
  }
}

resource messageKeyPreviousSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (storeMessageKeyPrevious) {
  parent: vault
  name: 'message-key-previous'
  properties: {
    value: messageKeyPrevious
    contentType: 'base64 HMAC-SHA256 key accepted during a rotation (MESSAGE_KEY_PREVIOUS)'
  }
}

resource targetPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (storeTargetPassword) {
  parent: vault
  name: 'target-password'
  properties: {
    value: targetPassword
    contentType: 'target registry password or token (TARGET_PASSWORD)'
  }
}

// Secret names allow letters, digits and dashes; credential names are letters, digits and underscores.
func credentialSecretName(name string) string => 'registry-credential-${toLower(replace(name, '_', '-'))}'

resource registryCredentialSecrets 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = [
  for name in registryCredentialNames: {
    parent: vault
    name: credentialSecretName(name)
    properties: {
      value: registryCredentialPasswords[name]
      contentType: 'password or token of registry credential "${name}" (REGISTRY_CREDENTIALS__${name}__PASSWORD)'
    }
  }
]

// AuditEvent: every access to the vault (Microsoft Learn: key-vault/general/logging).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logsWorkspaceId
    logs: [{ category: 'AuditEvent', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Unversioned secret URIs: the platform picks up a new secret version within a day, or at once on any change
// of the app's configuration. Whoever uses these outputs waits for this whole module, the role assignment included,
// so the references resolve on the app's first start.
output vaultName string = vault.name
@description('Key Vault references to put in app settings, by setting name (empty: that secret is not stored).')
output references object = {
  // Built from the vault, not from the secret resource, which this deployment may not write.
  CREDENTIAL_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/credential-key)'
  TARGET_PASSWORD: storeTargetPassword ? '@Microsoft.KeyVault(SecretUri=${targetPasswordSecret!.properties.secretUri})' : ''
  MESSAGE_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/message-key)'
  MESSAGE_KEY_PREVIOUS: !storeMessageKeyPrevious ? '' : '@Microsoft.KeyVault(SecretUri=${messageKeyPreviousSecret!.properties.secretUri})'
}

@description('REGISTRY_CREDENTIALS__<name>__PASSWORD app settings: Key Vault references, by setting name.')
output registryCredentialReferences object = toObject(
  registryCredentialNames,
  name => 'REGISTRY_CREDENTIALS__${name}__PASSWORD',
  name => '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${credentialSecretName(name)})'
)
