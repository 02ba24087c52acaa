/**
 * A registry given by ARM resource ID (`az acr import --registry /subscriptions/…`): one
 * `GET {ARM_ENDPOINT}/subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name>?api-version=2023-07-01`
 * with an Entra ID token for Resource Manager (`{ARM_ENDPOINT}/.default`) gives its login server and its
 * network settings. The identity needs `Microsoft.ContainerRegistry/registries/read` there (Reader).
 */
import type { TokenCredential } from '@azure/identity';
import { AzureError, describeAnswer } from './errors.js';
import { getJson, type HttpOptions } from './http.js';
import { DEFAULT_ARM_ENDPOINT } from '../config.js';

export { DEFAULT_ARM_ENDPOINT } from '../config.js';
export const ARM_API_VERSION = '2023-07-01';

export interface RegistryResourceId {
  /** Canonical form: `/subscriptions/<sub>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name>`. */
  readonly id: string;
  readonly subscription: string;
  readonly resourceGroup: string;
  readonly name: string;
}

export interface ResolvedRegistry extends RegistryResourceId {
  /** `myregistry.azurecr.io`, lowercased. */
  readonly loginServer: string;
  /** `Enabled` | `Disabled`, as ARM says (absent in old API answers). */
  readonly publicNetworkAccess?: string;
  /** `AzureServices` | `None`: whether trusted Azure services bypass the network rules. */
  readonly networkRuleBypassOptions?: string;
  /** `Allow` | `Deny`: the firewall's default for addresses not listed. */
  readonly networkDefaultAction?: string;
}

const RESOURCE_ID =
  /^\/subscriptions\/([0-9a-fA-F-]{36})\/resourceGroups\/([-\w._()]{1,90})\/providers\/Microsoft\.ContainerRegistry\/registries\/([a-zA-Z0-9]{5,50})\/?$/i;

/** Whether a `registry` value is meant as a resource ID (then it must parse as one). */
export function isResourceId(value: string): boolean {
  return value.startsWith('/subscriptions/') || value.startsWith('/SUBSCRIPTIONS/');
}

export function parseRegistryResourceId(value: string): RegistryResourceId {
  const m = RESOURCE_ID.exec(value.trim());
  if (!m || m[2]!.endsWith('.')) {
    throw new AzureError(
      'INVALID_RESOURCE_ID',
      `"${value.slice(0, 300)}" is not a container registry resource ID; expected /subscriptions/<subscription ID>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name>`,
    );
  }
  const [, subscription, resourceGroup, name] = m as unknown as [string, string, string, string];
  return {
    id: `/subscriptions/${subscription.toLowerCase()}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${name}`,
    subscription: subscription.toLowerCase(),
    resourceGroup,
    name,
  };
}

/** `https://management.azure.com` → `https://management.azure.com/.default` (the Resource Manager audience). */
export function armScope(armEndpoint: string): string {
  return `${new URL(armEndpoint).origin}/.default`;
}

export interface ArmOptions {
  readonly credential: TokenCredential;
  /** Who signs in, for messages. */
  readonly identity: string;
  /** Resource Manager endpoint, default https://management.azure.com (sovereign clouds: their own). */
  readonly armEndpoint?: string;
  readonly http?: HttpOptions;
}

const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/;

/** Resolves a registry resource ID to its login server (and network settings) through Resource Manager. */
export async function resolveRegistry(resourceId: string, o: ArmOptions): Promise<ResolvedRegistry> {
  const rid = parseRegistryResourceId(resourceId);
  const endpoint = o.armEndpoint ?? DEFAULT_ARM_ENDPOINT;
  const scope = armScope(endpoint);
  let token: string | undefined;
  try {
    token = (await o.credential.getToken(scope))?.token;
  } catch (err) {
    if (err instanceof AzureError) throw err;
    const reason = String((err as Error)?.message ?? err)
      .replace(/\s+/g, ' ')
      .slice(0, 400);
    throw new AzureError(
      'IDENTITY_UNAVAILABLE',
      `could not get an Entra ID token for ${scope} from ${o.identity} to look up registry ${rid.id}: ${reason} — in Azure, give the app a managed identity (and set AZURE_CLIENT_ID to its client ID when it is user-assigned)`,
      /network|ECONN|ETIMEDOUT|timeout/i.test(reason),
      { cause: err },
    );
  }
  if (!token) throw new AzureError('IDENTITY_UNAVAILABLE', `${o.identity} returned no Entra ID token for ${scope}`);

  const url = new URL(endpoint.replace(/\/+$/, '') + rid.id);
  url.searchParams.set('api-version', ARM_API_VERSION);
  const { status, body } = await getJson(url, token, o.http);
  if (status === 404) {
    throw new AzureError(
      'REGISTRY_RESOURCE_NOT_FOUND',
      `registry ${rid.id} was not found (Azure Resource Manager answered ${describeAnswer(status, body)}): check the subscription, resource group and registry name`,
    );
  }
  if (status === 403) {
    throw new AzureError(
      'REGISTRY_RESOURCE_FORBIDDEN',
      `${o.identity} may not read registry ${rid.id} (Azure Resource Manager answered ${describeAnswer(status, body)}): assign it the Reader role on the registry (Microsoft.ContainerRegistry/registries/read), besides AcrPull for the images`,
    );
  }
  if (status === 401) {
    throw new AzureError(
      'ARM_UNAUTHORIZED',
      `Azure Resource Manager refused the token of ${o.identity} for registry ${rid.id} (${describeAnswer(status, body)}): a registry in another tenant cannot be given by resource ID; give its login server in source and an Entra ID token of its tenant as password`,
    );
  }
  if (status !== 200) {
    throw new AzureError(
      'AZURE_AUTH_FAILED',
      `Azure Resource Manager answered ${describeAnswer(status, body)} for registry ${rid.id}`,
      status === 429 || status >= 500,
    );
  }
  let properties: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(body) as { properties?: unknown };
    if (parsed.properties && typeof parsed.properties === 'object')
      properties = parsed.properties as Record<string, unknown>;
  } catch {
    // reported below
  }
  const loginServer = typeof properties.loginServer === 'string' ? properties.loginServer.trim().toLowerCase() : '';
  if (!HOST.test(loginServer)) {
    throw new AzureError(
      'AZURE_AUTH_FAILED',
      `Azure Resource Manager answered registry ${rid.id} without a usable loginServer`,
    );
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  const rules = properties.networkRuleSet as { defaultAction?: unknown } | undefined;
  return {
    ...rid,
    loginServer,
    publicNetworkAccess: str(properties.publicNetworkAccess),
    networkRuleBypassOptions: str(properties.networkRuleBypassOptions),
    networkDefaultAction: str(rules?.defaultAction),
  };
}

/** True when ARM says the registry takes no traffic from the public internet at large. */
export function isNetworkRestricted(r: ResolvedRegistry): boolean {
  return r.publicNetworkAccess?.toLowerCase() === 'disabled' || r.networkDefaultAction?.toLowerCase() === 'deny';
}
