// The target Azure Container Registry, when the template creates it; optionally behind a private endpoint.
import { permissionsModeType } from 'roles.bicep'

param location string
param tags object
param registryName string
@allowed(['Basic', 'Standard', 'Premium'])
param sku string
@description('rbac: classic mode (AcrPush is honoured). abac: repository-permission mode (only the Container Registry Repository roles are honoured). both: classic mode, with both role sets assigned.')
param permissionsMode permissionsModeType
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string
@description('Subnet for a private endpoint of the registry; empty: none. Private endpoints need the Premium SKU.')
param privateEndpointSubnetId string
@description('Existing private DNS zone privatelink.azurecr.io for the endpoint; empty: create one linked to the endpoint\'s virtual network.')
param privateDnsZoneId string
@description('Log Analytics workspace for the registry\'s diagnostic settings; empty: none.')
param logsWorkspaceId string

var withPrivateEndpoint = !empty(privateEndpointSubnetId)
// `/subscriptions/…/virtualNetworks/<vnet>/subnets/<subnet>` → the virtual network's ID.
var privateEndpointVnetId = withPrivateEndpoint ? join(take(split(privateEndpointSubnetId, '/'), 9), '/') : ''
var createDnsZone = withPrivateEndpoint && empty(privateDnsZoneId)
// Private endpoints and turning the public endpoint off are Premium features (Microsoft Learn:
// container-registry/container-registry-skus, container-registry-private-link and
// container-registry-access-selected-networks); ARM refuses `publicNetworkAccess: Disabled` on Basic and Standard
// with DisablingPublicNetworkAccessNotSupported ("Disabling public network access is not supported for the SKU
// Standard", as quoted in hashicorp/terraform-provider-azurerm#26054).
var premium = withPrivateEndpoint || publicNetworkAccess == 'Disabled'

resource registry 'Microsoft.ContainerRegistry/registries@2025-11-01' = {
  name: registryName
  location: location
  tags: tags
  sku: { name: premium ? 'Premium' : sku }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: publicNetworkAccess
    networkRuleBypassOptions: 'AzureServices'
    roleAssignmentMode: permissionsMode == 'abac' ? 'AbacRepositoryPermissions' : 'LegacyRegistryPermissions'
  }
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2025-05-01' = if (withPrivateEndpoint) {
  name: 'pe-${registryName}'
  location: location
  tags: tags
  properties: {
    subnet: { id: privateEndpointSubnetId }
    privateLinkServiceConnections: [
      {
        name: 'registry'
        properties: {
          privateLinkServiceId: registry.id
          groupIds: ['registry']
        }
      }
    ]
  }
}

resource dnsZone 'Microsoft.Network/privateDnsZones@2024-06-01' = if (createDnsZone) {
  name: 'privatelink${environment().suffixes.acrLoginServer}'
  location: 'global'
  tags: tags
}

resource dnsZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = if (createDnsZone) {
  parent: dnsZone
  name: 'link-${uniqueString(privateEndpointVnetId)}'
  location: 'global'
  tags: tags
  properties: {
    virtualNetwork: { id: privateEndpointVnetId }
    registrationEnabled: false
  }
}

resource dnsZoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2025-05-01' = if (withPrivateEndpoint) {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'registry'
        properties: { privateDnsZoneId: createDnsZone ? dnsZone.id : privateDnsZoneId }
      }
    ]
  }
}

// Repository events (push, pull, delete) and login events (Microsoft Learn: container-registry/
// monitor-container-registry-reference, resource logs).
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: registry
  properties: {
    workspaceId: logsWorkspaceId
    logs: [
      { category: 'ContainerRegistryRepositoryEvents', enabled: true }
      { category: 'ContainerRegistryLoginEvents', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
