// Data-plane rights for the app's identity on one registry, deployed into the registry's own resource group (it
// may be another group or subscription than the app's). Push (target) or pull (source), in the role set the
// registry's permissions mode honours.
import { roleIds, permissionsModeType } from 'roles.bicep'

param registryName string
@description('Principal (object) ID of the app\'s managed identity.')
param appPrincipalId string
@description('push: the target registry (AcrPush / Container Registry Repository Writer). pull: a source registry (AcrPull / Container Registry Repository Reader).')
@allowed(['push', 'pull'])
param access string
param permissionsMode permissionsModeType

var classic = access == 'push' ? roleIds.acrPush : roleIds.acrPull
var repository = access == 'push' ? roleIds.containerRegistryRepositoryWriter : roleIds.containerRegistryRepositoryReader
var dataRoles = permissionsMode == 'rbac' ? [classic] : permissionsMode == 'abac' ? [repository] : [classic, repository]
// A source may be given by ARM resource ID: resolving it reads the registry resource (Reader on that registry only).
var roles = access == 'pull' ? concat(dataRoles, [roleIds.reader]) : dataRoles

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' existing = {
  name: registryName
}

// No ABAC condition: the grant covers every repository of the registry, as AcrPush/AcrPull do. To confine the
// app to some repositories in ABAC mode, add a condition on
// @Request[Microsoft.ContainerRegistry/registries/repositories:name] to these assignments.
resource grants 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in roles: {
    name: guid(registry.id, appPrincipalId, roleId)
    scope: registry
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

output loginServer string = registry.properties.loginServer
