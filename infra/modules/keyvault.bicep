// Key Vault (RBAC authorization) holding the app's secrets. App settings point at them as Key Vault references,
// resolved by the platform with the app's user-assigned identity, so no secret value is ever an app setting.
// Flex Consumption cannot resolve references against a network-restricted vault, so the vault stays reachable
// publicly and is guarded by Entra ID + RBAC alone.
import { roleIds } from 'roles.bicep'

param location string
param tags object
param vaultName string
@description('Principal (object) ID of the app\'s managed identity (gets Key Vault Secrets User).')
param appPrincipalId string

@secure()
@description('CREDENTIAL_KEY: base64 of 32 random bytes (AES-256-GCM key for inline credentials at rest).')
param credentialKey string

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
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
  }
}

resource credentialKeySecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: 'credential-key'
  properties: {
    value: credentialKey
    contentType: 'base64 AES-256 key (CREDENTIAL_KEY)'
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
  CREDENTIAL_KEY: '@Microsoft.KeyVault(SecretUri=${credentialKeySecret.properties.secretUri})'
  TARGET_PASSWORD: storeTargetPassword ? '@Microsoft.KeyVault(SecretUri=${targetPasswordSecret!.properties.secretUri})' : ''
}

@description('REGISTRY_CREDENTIALS__<name>__PASSWORD app settings: Key Vault references, by setting name.')
output registryCredentialReferences object = toObject(
  registryCredentialNames,
  name => 'REGISTRY_CREDENTIALS__${name}__PASSWORD',
  name => '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${credentialSecretName(name)})'
)
