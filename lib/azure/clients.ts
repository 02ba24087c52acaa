/**
 * How the service and the CLI sign in to Azure registries, in one place:
 *
 * - target with TARGET_AUTH=managed-identity → the app's identity through the ACR exchange;
 * - source given by ARM resource ID → resolved through Resource Manager, pulled with the app's identity;
 * - source with a password and no username → that password is an Entra ID token (typically of another
 *   tenant), exchanged the same way;
 * - any other source → the registry's own challenge (anonymous, username and password), as before.
 *
 * Refusals of such registries are explained in ACR's terms where errors leave the service or the CLI
 * (`explainFailure`): which role is missing, which network setting keeps the app out.
 */
import type { Authenticator, Credentials } from '../oci/auth.js';
import { DEFAULT_ACR_AUDIENCE, DEFAULT_ARM_ENDPOINT, type Config } from '../config.js';
import { AcrExchangeAuthenticator, entraScope } from './acr-exchange.js';
import { resolveRegistry, type ResolvedRegistry } from './arm.js';
import { STATIC_TOKEN_LABEL, StaticTokenCredential, appIdentity, type IdentitySettings } from './credentials.js';
import { explainError, type AzureRegistryContext, type ExplainOptions } from './errors.js';
import type { HttpOptions } from './http.js';
import { RATE_WINDOW_MS } from '../oci/body.js';

export interface AzureSettings {
  /** ACR_AUDIENCE: Entra ID audience of ACR tokens. */
  readonly acrAudience?: string;
  /** ARM_ENDPOINT: Resource Manager endpoint. */
  readonly armEndpoint?: string;
  readonly identity?: IdentitySettings;
  readonly http?: HttpOptions;
}

/** The Azure part of the settings; calls under the request deadlines of REQUEST_TIMEOUT_SECONDS and MIN_BYTES_PER_SECOND. */
export function azureSettings(config: Config): AzureSettings {
  return {
    acrAudience: config.acrAudience,
    armEndpoint: config.armEndpoint,
    identity: {
      clientId: config.azureClientId,
      ...(config.azureCredential === 'default' ? { kind: 'default' as const } : {}),
    },
    http: {
      timeouts: {
        idleMs: config.requestTimeoutSeconds * 1000,
        minBytesPerSecond: config.minBytesPerSecond,
        rateWindowMs: RATE_WINDOW_MS,
      },
    },
  };
}

/** A password-only credential: the password is an Entra ID access token. */
export function isEntraToken(credentials: Credentials | undefined): credentials is Credentials {
  return credentials !== undefined && credentials.username === '';
}

/** The credentials record of a password-only (Entra ID token) credential. */
export function entraTokenCredentials(token: string): Credentials {
  return { username: '', password: token };
}

export interface RegistryAuth {
  /** Undefined: the registry's own challenge flow (anonymous or username/password). */
  readonly authenticator?: Authenticator;
  readonly context: AzureRegistryContext;
  readonly explain: ExplainOptions;
}

/**
 * Authenticators of the app's identity, per registry: their refresh and access tokens outlive one step. Kept per
 * dispatcher, so a source's authenticator never connects through another (an unguarded) one.
 */
const shared = new WeakMap<object, Map<string, AcrExchangeAuthenticator>>();
const SHARED_AGENT = {};
const MAX_SHARED = 64;

function identityAuthenticator(
  settings: AzureSettings,
  registry: string,
  insecure: boolean,
  context: AzureRegistryContext,
): AcrExchangeAuthenticator {
  const identity = appIdentity(settings.identity);
  const scope = entraScope(settings.acrAudience ?? DEFAULT_ACR_AUDIENCE);
  const key = [context.role, registry, insecure, identity.key, scope, context.resourceId ?? ''].join('|');
  const pool = settings.http?.dispatcher ?? SHARED_AGENT;
  let byKey = shared.get(pool);
  if (!byKey) shared.set(pool, (byKey = new Map()));
  let auth = byKey.get(key);
  if (!auth) {
    auth = new AcrExchangeAuthenticator({
      loginServer: registry,
      credential: identity.credential,
      scope,
      insecure,
      context,
      http: settings.http,
    });
    if (byKey.size >= MAX_SHARED) byKey.delete(byKey.keys().next().value!);
    byKey.set(key, auth);
  }
  return auth;
}

/** How to sign in to the target registry when TARGET_AUTH=managed-identity. */
export function targetIdentityAuth(settings: AzureSettings, registry: string, insecure: boolean): RegistryAuth {
  const context: AzureRegistryContext = { registry, role: 'target', identity: appIdentity(settings.identity).label };
  return { authenticator: identityAuthenticator(settings, registry, insecure, context), context, explain: {} };
}

/** How to sign in to a source registry. */
export function sourceAuth(
  settings: AzureSettings,
  o: {
    readonly registry: string;
    readonly insecure: boolean;
    readonly credentials?: Credentials;
    /** The registry was given by this ARM resource ID: pull with the app's identity. */
    readonly resourceId?: string;
  },
): RegistryAuth {
  const { registry, insecure } = o;
  if (isEntraToken(o.credentials)) {
    const context: AzureRegistryContext = {
      registry,
      role: 'source',
      identity: STATIC_TOKEN_LABEL,
      crossTenant: true,
      resourceId: o.resourceId,
    };
    const authenticator = new AcrExchangeAuthenticator({
      loginServer: registry,
      credential: new StaticTokenCredential(o.credentials.password),
      scope: entraScope(settings.acrAudience ?? DEFAULT_ACR_AUDIENCE),
      insecure,
      context,
      http: settings.http,
    });
    return { authenticator, context, explain: {} };
  }
  if (o.resourceId && !o.credentials) {
    const context: AzureRegistryContext = {
      registry,
      role: 'source',
      identity: appIdentity(settings.identity).label,
      resourceId: o.resourceId,
    };
    return { authenticator: identityAuthenticator(settings, registry, insecure, context), context, explain: {} };
  }
  // Anonymous or username/password: only ACR's network refusal gets ACR's explanation.
  return {
    context: { registry, role: 'source', identity: 'the given credentials', resourceId: o.resourceId },
    explain: { access: false },
  };
}

/**
 * An error leaving the service or the CLI, explained in ACR's terms by the sign-in of the side it came
 * from (`err.side`); errors of other sides, or of registries signed in to otherwise, pass unchanged.
 */
export function explainFailure(
  err: unknown,
  auths: { readonly source?: RegistryAuth; readonly target?: RegistryAuth },
): unknown {
  const side = (err as { side?: unknown } | null)?.side;
  const auth = side === 'source' ? auths.source : side === 'target' ? auths.target : undefined;
  return auth ? explainError(err, auth.context, auth.explain) : err;
}

/** Resolves a registry resource ID with the app's identity. */
export function registryResolver(settings: AzureSettings): (resourceId: string) => Promise<ResolvedRegistry> {
  return (resourceId) => {
    const identity = appIdentity(settings.identity);
    return resolveRegistry(resourceId, {
      credential: identity.credential,
      identity: identity.label,
      armEndpoint: settings.armEndpoint ?? DEFAULT_ARM_ENDPOINT,
      http: settings.http,
    });
  };
}
