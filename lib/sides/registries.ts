/**
 * The one factory of registry clients, for the service and the CLI: how each side signs in (lib/azure
 * clients), over which connections (a source's dispatcher vets every address it connects to), with which
 * retries and deadlines, and which errors it stamps (`source` / `target`). Clients are cached by host and
 * credential, so token caches and keep-alive connections outlive one queue step; a request's inline
 * credentials get a client of their own.
 */
import type { Dispatcher } from 'undici';
import {
  azureSettings,
  explainFailure,
  sourceAuth,
  targetIdentityAuth,
  type AzureSettings,
  type RegistryAuth,
} from '../azure/clients.js';
import type { Config, NamedCredential } from '../config.js';
import { RATE_WINDOW_MS } from '../oci/body.js';
import type { BoundCredentials, Credentials } from '../oci/auth.js';
import type { Timeouts } from '../oci/body.js';
import { normalizeRegistry } from '../oci/reference.js';
import { RegistryClient } from '../oci/registry.js';
import { isBound, privateEndpointHosts, vetPrivateEndpointAddresses } from '../policy/private-sources.js';
import { guardedDispatcher, matchesPattern, type Lookup } from '../policy/sources.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../retry.js';

/** A client and how its side signs in (for explaining its refusals). */
export interface SideClient {
  readonly client: RegistryClient;
  readonly auth: RegistryAuth;
}

/** Credentials of a source: a named credential of the deployment, or a request's own (inline, CLI flags). */
export type SourceCredentials =
  | { readonly kind: 'named'; readonly credential: NamedCredential }
  | { readonly kind: 'inline'; readonly credentials: Credentials | BoundCredentials };

export interface RegistriesOptions {
  readonly config: Config;
  /** Vet every source connection's addresses (the service); off for the CLI, run by its own operator. */
  readonly guardSources: boolean;
  readonly lookup?: Lookup;
  /** Request retries (tests shorten them); `maxRetryAfterMs` is how long a Retry-After is waited in-process. */
  readonly retry?: RetryPolicy;
  readonly timeouts?: Timeouts;
  /** Plain-HTTP hosts beyond INSECURE_REGISTRIES (CLI `--insecure`). */
  readonly insecure?: readonly string[];
  /** Target sign-in beyond the settings (CLI flags, or bound credentials of a Docker config). */
  readonly targetCredentials?: Credentials | BoundCredentials;
}

export class Registries {
  private readonly cache = new Map<string, SideClient>();
  private readonly insecure: Set<string>;
  private readonly timeouts: Timeouts;
  private sourceDispatcher?: Dispatcher;
  /** Dispatchers of sources bound to a private endpoint (PRIVATE_SOURCE_REGISTRIES), by resource ID and login server. */
  private readonly privateDispatchers = new Map<string, Dispatcher>();

  constructor(private readonly o: RegistriesOptions) {
    this.insecure = new Set([...o.config.insecureRegistries, ...(o.insecure ?? [])].map(normalizeRegistry));
    this.timeouts = o.timeouts ?? {
      idleMs: o.config.requestTimeoutSeconds * 1000,
      minBytesPerSecond: o.config.minBytesPerSecond,
      rateWindowMs: RATE_WINDOW_MS,
    };
  }

  isInsecure(registry: string): boolean {
    return this.insecure.has(normalizeRegistry(registry));
  }

  /** The target registry, signed in as the settings (and CLI flags) say. */
  target(registry = this.o.config.targetRegistry ?? ''): SideClient {
    const host = normalizeRegistry(registry);
    return this.cached(`target|${host}`, () => {
      const { config } = this.o;
      const insecure = this.isInsecure(host);
      if (config.targetAuth === 'managed-identity') {
        const auth = targetIdentityAuth(this.azure('target'), host, insecure);
        return { auth, client: this.build(host, 'target', { authenticator: auth.authenticator }) };
      }
      const credentials =
        config.targetAuth === 'basic'
          ? (this.o.targetCredentials ??
            (config.targetUsername ? { username: config.targetUsername, password: config.targetPassword! } : undefined))
          : undefined;
      const auth: RegistryAuth = {
        context: { registry: host, role: 'target', identity: 'the target credentials' },
        explain: { access: false },
      };
      return { auth, client: this.build(host, 'target', { credentials }) };
    });
  }

  /**
   * A source registry with its credentials: a named credential only where it is bound (checked again
   * at every send, token realms included); a password without username is an Entra ID token; a registry
   * given by ARM resource ID is pulled with the app's identity.
   */
  source(registry: string, credentials?: SourceCredentials, resourceId?: string): SideClient {
    const host = normalizeRegistry(registry);
    const make = (): SideClient => {
      const plain = credentials?.kind === 'named' ? credentials.credential : credentials?.credentials;
      const dispatcher =
        this.o.guardSources && resourceId && isBound(this.o.config, resourceId)
          ? this.privateEndpoint(resourceId, host)
          : undefined;
      const auth = sourceAuth(this.azure('source', dispatcher), {
        registry: host,
        insecure: this.isInsecure(host),
        credentials: plain,
        resourceId,
      });
      return {
        auth,
        client: this.build(
          host,
          'source',
          { authenticator: auth.authenticator, credentials: bound(credentials) },
          dispatcher,
        ),
      };
    };
    // A request's own credentials are its own: never shared with another request's client.
    if (credentials?.kind === 'inline') return make();
    return this.cached(`source|${host}|${credentials?.credential.name.toLowerCase() ?? ''}|${resourceId ?? ''}`, make);
  }

  /** An error leaving the service or the CLI, in ACR's words where the failing side is an Azure registry. */
  explain(err: unknown, sides: { readonly source?: SideClient; readonly target?: SideClient }): unknown {
    return explainFailure(err, { source: sides.source?.auth, target: sides.target?.auth });
  }

  private build(
    registry: string,
    side: 'source' | 'target',
    auth: Pick<ConstructorParameters<typeof RegistryClient>[0], 'authenticator' | 'credentials'>,
    dispatcher?: Dispatcher,
  ): RegistryClient {
    return new RegistryClient({
      registry,
      side,
      insecure: this.isInsecure(registry),
      ...auth,
      retry: this.o.retry ?? DEFAULT_RETRY,
      timeouts: this.timeouts,
      dispatcher: dispatcher ?? (side === 'source' && this.o.guardSources ? this.guarded() : undefined),
    });
  }

  /**
   * The guarded dispatcher of a source bound to a private endpoint: its login server (as Resource Manager reported
   * it) and data endpoints may resolve to private-endpoint addresses; every other host is vetted as usual.
   */
  private privateEndpoint(resourceId: string, loginServer: string): Dispatcher {
    const key = `${resourceId.toLowerCase()}|${loginServer}`;
    let dispatcher = this.privateDispatchers.get(key);
    if (!dispatcher) {
      const own = privateEndpointHosts(resourceId, loginServer);
      dispatcher = guardedDispatcher(this.o.config.allowedSources, this.o.lookup, (host) =>
        own(host) ? vetPrivateEndpointAddresses : undefined,
      );
      this.privateDispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  /**
   * The Azure sign-in of a side (the `GET /v2/` probe, /oauth2/exchange and /oauth2/token) over the side's own
   * connections and deadlines: a source's through the same guarded dispatcher as its registry requests (`own`:
   * the private-endpoint dispatcher of a bound source).
   */
  private azure(side: 'source' | 'target', own?: Dispatcher): AzureSettings {
    const settings = azureSettings(this.o.config);
    const dispatcher = own ?? (side === 'source' && this.o.guardSources ? this.guarded() : undefined);
    return {
      ...settings,
      http: {
        ...settings.http,
        timeouts: this.timeouts,
        ...(this.o.retry ? { retry: this.o.retry } : {}),
        ...(dispatcher ? { dispatcher } : {}),
      },
    };
  }

  private guarded(): Dispatcher {
    this.sourceDispatcher ??= guardedDispatcher(this.o.config.allowedSources, this.o.lookup);
    return this.sourceDispatcher;
  }

  private cached(key: string, make: () => SideClient): SideClient {
    let entry = this.cache.get(key);
    if (!entry) {
      entry = make();
      // a deployment talks to a handful of registries; a bound keeps a hostile stream of hosts from growing it
      if (this.cache.size >= 256) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, entry);
    }
    return entry;
  }
}

/** A named credential's binding, as the authenticator checks it before every send. */
function bound(credentials: SourceCredentials | undefined): BoundCredentials | undefined {
  if (!credentials) return undefined;
  if (credentials.kind === 'inline')
    return {
      ...credentials.credentials,
      label: (credentials.credentials as BoundCredentials).label ?? 'the given username and password',
    };
  const c = credentials.credential;
  return {
    username: c.username,
    password: c.password,
    label: `credential "${c.name}"`,
    mayReceive: (hostPort) => c.registries.some((p) => matchesPattern(hostPort, p)),
    bindingSetting: `REGISTRY_CREDENTIALS__${c.name}__REGISTRIES`,
  };
}
