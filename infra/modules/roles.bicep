// Built-in Azure role definition IDs (the same GUID in every tenant), one place for all modules.
// Source: Microsoft Learn "Azure built-in roles" (role-based-access-control/built-in-roles.md); test/infra checks
// the compiled template against this list.

@export()
@description('Built-in role definition IDs used by this template.')
var roleIds = {
  // Storage (identity-based AzureWebJobsStorage, the import queue, the job table)
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Key Vault (RBAC vault; Key Vault references resolve with the app's identity)
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Application Insights with Entra ID authentication (local auth disabled)
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Container registry, classic mode ("RBAC Registry Permissions"): honoured only there
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  // Container registry, ABAC mode ("RBAC Registry + ABAC Repository Permissions"): AcrPush/AcrPull are not
  // honoured there, these are
  containerRegistryRepositoryWriter: '2a1e307c-b015-4ebd-883e-5b7698a07328'
  containerRegistryRepositoryReader: 'b93aa761-3e63-49ed-ac28-beffa264f7ac'
  // Control plane: reading a source registry's resource (its login server and network settings) when a request
  // names it by ARM resource ID; AcrPull and the repository roles do not include registries/read
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
}

@export()
@description('How a registry grants data-plane rights: rbac = classic roles (AcrPush/AcrPull), abac = repository roles, both = assign the two sets (for a registry about to switch, or when its mode is unknown).')
type permissionsModeType = 'rbac' | 'abac' | 'both'
