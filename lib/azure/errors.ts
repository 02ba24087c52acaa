/**
 * Errors of the Azure sign-in paths, worded so that a person knows what to change: which identity lacks
 * which role on which registry, which network setting keeps the app out. Every message names registries,
 * repositories and identities (client IDs are not secret), never a token.
 *
 * `explainError` puts the same words on what a registry answers later (a 401/403 to a manifest PUT, ACR's
 * firewall refusal), because those arrive as plain `RegistryError`s from the OCI layer. It is applied once,
 * where an error leaves the service or the CLI (`explainFailure`): inside, the engine decides on the
 * registry's own error.
 */
import { OciImportError, type OciImportErrorOptions } from '../errors.js';
import { RegistryError, parseDiagnostics } from '../oci/errors.js';

export type AzureErrorCode =
  /** No Entra ID token: no managed identity assigned, a wrong client ID, the endpoint is down. */
  | 'IDENTITY_UNAVAILABLE'
  /** A password-only Entra ID token has expired (or is not a token). */
  | 'TOKEN_EXPIRED'
  /** The registry's /oauth2/exchange refused the Entra ID token (tenant, audience). */
  | 'TOKEN_REJECTED'
  /** The identity lacks pull (source) or push (target) rights on the registry. */
  | 'ACCESS_DENIED'
  /** A source given by login server refused this app's network address. */
  | 'PUBLIC_ACCESS_DISABLED'
  /** A registry given by resource ID (or the target) refused this app's network address. */
  | 'NETWORK_RESTRICTED'
  /** A password-only (cross-tenant) token for a registry that refuses public network access. */
  | 'CROSS_TENANT_NOT_SUPPORTED'
  /** The registry has no /oauth2/exchange: not an Azure Container Registry. */
  | 'NOT_ACR'
  | 'INVALID_RESOURCE_ID'
  | 'REGISTRY_RESOURCE_NOT_FOUND'
  | 'REGISTRY_RESOURCE_FORBIDDEN'
  /** Azure Resource Manager refused the token itself (wrong tenant, expired). */
  | 'ARM_UNAUTHORIZED'
  /** Anything else a token or ARM endpoint answered that we cannot act on; temporary for 429/5xx. */
  | 'AZURE_AUTH_FAILED';

export class AzureError extends OciImportError {
  override name = 'AzureError';
  declare readonly code: AzureErrorCode;
  constructor(code: AzureErrorCode, message: string, temporary = false, options: OciImportErrorOptions = {}) {
    super(code, message, { ...options, temporary });
  }
}

/** What the messages need to know about the registry being signed in to. */
export interface AzureRegistryContext {
  /** Login server, `myregistry.azurecr.io`. */
  readonly registry: string;
  /** Source (pull) or target (push): decides the role to name. */
  readonly role: 'source' | 'target';
  /** Who signs in, as a phrase: `the app's managed identity (client ID …)`, `the Entra ID token given as password`. */
  readonly identity: string;
  /** A password-only Entra ID token, i.e. an identity of another tenant. */
  readonly crossTenant?: boolean;
  /** The source registry was given by ARM resource ID. */
  readonly resourceId?: string;
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** The registry's name for `az acr` commands: the first DNS label of its login server. */
export function registryName(loginServer: string): string {
  return loginServer.split('.')[0]!.split(':')[0]!;
}

/** `the identity lacks push rights on registry …` (target) or `… pull rights …` (source). */
export function accessDenied(ctx: AzureRegistryContext, repository?: string, answered?: string): AzureError {
  const where = `registry ${ctx.registry}${repository ? ` (repository ${repository})` : ''}`;
  const fix =
    ctx.role === 'target'
      ? 'assign it the AcrPush role on the registry (Container Registry Repository Writer when the registry uses ABAC repository permissions)'
      : 'assign it the AcrPull role on the registry (Container Registry Repository Reader when the registry uses ABAC repository permissions)';
  const rights = ctx.role === 'target' ? 'push' : 'pull';
  return new AzureError(
    'ACCESS_DENIED',
    `${cap(ctx.identity)} lacks ${rights} rights on ${where}: ${fix}${answered ? `; the registry answered ${answered}` : ''}`,
  );
}

/** The registry refused this app's network address (ACR firewall, public access disabled). */
export function networkDenied(ctx: AzureRegistryContext, answered?: string): AzureError {
  const tail = answered ? `; the registry answered ${answered}` : '';
  if (ctx.crossTenant) {
    return new AzureError(
      'CROSS_TENANT_NOT_SUPPORTED',
      `cross-tenant import from a registry with public access disabled is not supported: registry ${ctx.registry} refused this app's network address; enable public network access on it (a firewall rule for the app's outbound addresses is enough), or import with a username and password of a registry that allows the app${tail}`,
    );
  }
  if (ctx.role === 'source' && !ctx.resourceId) {
    return new AzureError(
      'PUBLIC_ACCESS_DISABLED',
      `source registry ${ctx.registry} has public network access disabled (it refused this app's network address): give the registry by its ARM resource ID ("registry": "/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/${registryName(ctx.registry)}"), not by its login server${tail}`,
    );
  }
  return new AzureError(
    'NETWORK_RESTRICTED',
    `registry ${ctx.registry} is network-restricted and refused this app's network address: a network-restricted registry must allow trusted services (az acr update --name ${registryName(ctx.registry)} --allow-trusted-services true) and the app must reach it through the registry's virtual network (private endpoint) or a firewall rule for the app's outbound addresses${tail}`,
  );
}

const NETWORK_DENIAL = /not allowed access|aka\.ms\/acr\/firewall|public network access/i;

/** ACR's firewall answer: 403 `DENIED: client with IP '…' is not allowed access. Refer https://aka.ms/acr/firewall …`. */
export function isNetworkDenial(status: number, body: string): boolean {
  if (status !== 403) return false;
  return NETWORK_DENIAL.test(
    parseDiagnostics(body)
      .map((d) => d.message)
      .join(' ') || body,
  );
}

/** `CODE: message` of an error body, short, for the end of our own messages (never echoes a request). */
export function describeAnswer(status: number, body: string): string {
  const diags = parseDiagnostics(body);
  if (diags.length)
    return `${status} ${diags
      .map((d) => `${d.code}: ${d.message}`)
      .join('; ')
      .slice(0, 300)}`;
  try {
    const o = JSON.parse(body) as { error?: unknown; error_description?: unknown; message?: unknown };
    const e = o.error;
    if (e && typeof e === 'object') {
      const { code, message } = e as { code?: unknown; message?: unknown };
      return `${status} ${String(code ?? '')}: ${String(message ?? '')}`.slice(0, 300 + 8);
    }
    if (typeof e === 'string')
      return `${status} ${e}${typeof o.error_description === 'string' ? `: ${o.error_description}` : ''}`.slice(0, 300);
    if (typeof o.message === 'string') return `${status} ${o.message}`.slice(0, 300);
  } catch {
    // not JSON
  }
  return String(status);
}

const REPOSITORY_IN_URL = /\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)(?:\/|$)/;

export interface ExplainOptions {
  /**
   * Also explain 401/403 as missing rights of `ctx.identity` (default). Off for clients that sign in some other
   * way (anonymous, username and password): only ACR's network refusal is explained then.
   */
  readonly access?: boolean;
}

/**
 * A registry's refusal (401/403) in ACR's words: an AzureError on the same side, as temporary as the
 * original, with the original as its cause. Any other error is returned unchanged.
 */
export function explainError(err: unknown, ctx: AzureRegistryContext, options: ExplainOptions = {}): unknown {
  if (!(err instanceof RegistryError)) return err;
  const repository = REPOSITORY_IN_URL.exec(err.url)?.[1];
  const answered = `${err.status}${
    err.diagnostics.length
      ? ` ${err.diagnostics
          .map((d) => `${d.code}: ${d.message}`)
          .join('; ')
          .slice(0, 300)}`
      : ''
  }`;
  let explained: AzureError | undefined;
  if (err.status === 403 && NETWORK_DENIAL.test(err.diagnostics.map((d) => d.message).join(' ')))
    explained = networkDenied(ctx, answered);
  else if (options.access === false) explained = undefined;
  else if (err.status === 401) explained = accessDenied(ctx, repository, answered);
  else if (
    err.status === 403 &&
    err.diagnostics.some((d) =>
      /requested access to the resource is denied|not authorized|insufficient/i.test(d.message),
    )
  ) {
    explained = accessDenied(ctx, repository, answered);
  }
  if (!explained) return err;
  return new AzureError(explained.code, explained.message, err.temporary, { side: err.side ?? ctx.role, cause: err });
}
