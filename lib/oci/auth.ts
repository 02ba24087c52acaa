/**
 * Registry authentication driven by the registry's own challenge (`WWW-Authenticate`).
 *
 * 1. A request goes out with whatever is already known: a cached bearer token for its scopes, or
 *    Basic credentials once the registry asked for Basic.
 * 2. On 401 the challenge says what to do: `Basic` → send the credentials; `Bearer` → ask the token
 *    endpoint (`realm`) for the union of the request's scopes and the challenged ones, with the
 *    credentials as Basic when there are any, and retry once.
 * 3. Tokens are cached per scope set and fetched single-flight (`TokenCache`).
 */
import { isTemporary, type ErrorSide } from '../errors.js';
import type { Challenge } from './challenge.js';
import { parseScopes } from './challenge.js';
import { ProtocolError, redactUrl, type ProtocolErrorCode } from './errors.js';
import { TokenCache } from './token-cache.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Credentials with what they may be sent to. A named credential of the deployment is bound to its
 * registries (`REGISTRY_CREDENTIALS__<name>__REGISTRIES`): a request naming it for another host must not
 * turn it into a gift to that host, nor to a token endpoint that host names.
 */
export interface BoundCredentials extends Credentials {
  /** How messages name them (`credential "hub"`): never the username. */
  readonly label?: string;
  /** Whether they may go to this `host[:port]` (the registry itself, or a token realm's host). Default: any. */
  readonly mayReceive?: (hostPort: string) => boolean;
  /** The setting to extend when they may not (for the message). */
  readonly bindingSetting?: string;
}

/** What a registry client needs from an authentication scheme (basic, bearer, Entra ID exchange …). */
export interface Authenticator {
  /** The Authorization header to send up front for a request needing `scopes`, when one is known. */
  authorize(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined>;
  /** Learns from a 401 answer; returns a header worth one retry, or undefined when nothing can help. */
  onUnauthorized(
    challenges: readonly Challenge[],
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string | undefined>;
}

/** Fetches a token endpoint URL (GET) with optional Basic credentials; returns status and body text. */
export type TokenFetcher = (
  url: URL,
  authorization: string | undefined,
  signal?: AbortSignal,
) => Promise<{ status: number; body: string }>;

/** The spec's default when a token answer has no `expires_in`; also the floor (tokens live ≥ 60 s). */
const MIN_TOKEN_SECONDS = 60;
/** Refresh a token this long before it expires, so a request never leaves with a dying one. */
const TOKEN_REFRESH_MARGIN_MS = 15_000;

export function basicHeader(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64');
}

interface CachedToken {
  readonly header: string;
  readonly expiresAt: number;
}

/** Merges scopes so that actions on one resource are joined: `repo:a:pull` + `repo:a:push` → `repo:a:pull,push`. */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const cut = scope.lastIndexOf(':');
    if (cut <= 0) continue;
    const resource = scope.slice(0, cut);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const a of scope.slice(cut + 1).split(',')) if (a) actions.add(a);
    byResource.set(resource, actions);
  }
  return [...byResource].map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`);
}

export interface ChallengeAuthenticatorOptions {
  /** `host[:port]` of the registry. */
  readonly registry: string;
  readonly credentials?: BoundCredentials;
  readonly fetchToken: TokenFetcher;
  /** Plain-HTTP token realms are accepted only for registries that are themselves plain HTTP. */
  readonly allowHttpRealm: boolean;
  readonly side?: ErrorSide;
}

export class ChallengeAuthenticator implements Authenticator {
  private scheme: 'basic' | 'bearer' | undefined;
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new TokenCache<CachedToken>((t) => t.expiresAt - TOKEN_REFRESH_MARGIN_MS > Date.now());
  private readonly registry: string;
  private readonly credentials: BoundCredentials | undefined;

  constructor(private readonly o: ChallengeAuthenticatorOptions) {
    this.registry = o.registry;
    this.credentials = o.credentials;
  }

  async authorize(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    if (this.scheme === 'basic' && this.credentials) return this.basicFor(this.registry);
    if (this.scheme !== 'bearer' || !this.realm) return undefined;
    const merged = mergeScopes(scopes);
    const realm = { url: this.realm, service: this.service };
    try {
      return (
        this.tokens.peek(merged) ?? (await this.tokens.get(merged, () => this.requestToken(merged, realm, signal)))
      ).header;
    } catch (err) {
      // A realm refused now (its name resolves elsewhere, the binding changed) is forgotten: the next request asks
      // the registry again, unauthenticated, and learns from its answer.
      if (!isTemporary(err) && this.realm === realm.url) this.scheme = this.realm = this.service = undefined;
      throw err;
    }
  }

  /**
   * Learns from a 401 of the registry itself (the transport never hands over one from another origin). A Bearer
   * challenge is remembered only once its realm gave a token: a realm refused (another host the credentials are
   * not bound to, an address the guard refuses) leaves nothing behind, so the next import asks the registry anew.
   */
  async onUnauthorized(
    challenges: readonly Challenge[],
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      const realm = { url: this.checkRealm(bearer.params.realm), service: bearer.params.service };
      // The challenged scope goes first: some registries only read the first scope parameter.
      const merged = mergeScopes([...parseScopes(bearer.params.scope), ...scopes]);
      const token = await this.tokens.get(merged, () => this.requestToken(merged, realm, signal), true);
      this.scheme = 'bearer';
      this.realm = realm.url;
      this.service = realm.service;
      return token.header;
    }
    if (basic) {
      this.scheme = 'basic';
      if (!this.credentials) {
        throw this.error(
          'AUTH_REQUIRED',
          `registry ${this.registry} requires credentials (Basic); give a username and password for it`,
        );
      }
      return this.basicFor(this.registry);
    }
    return undefined;
  }

  /** Basic credentials for `hostPort`, only where they are bound (checked before every send). */
  private basicFor(hostPort: string): string {
    const c = this.credentials!;
    if (c.mayReceive && !c.mayReceive(hostPort)) {
      throw this.error(
        'CREDENTIAL_NOT_ALLOWED',
        `${c.label ?? 'the credential'} may not be sent to ${hostPort}${hostPort === this.registry ? '' : `, the token endpoint of ${this.registry}`}; it is bound to other registries${c.bindingSetting ? ` (${c.bindingSetting})` : ''}`,
      );
    }
    return basicHeader(c);
  }

  private checkRealm(realm: string | undefined): URL {
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw this.error('AUTH_FAILED', `registry ${this.registry} sent a Bearer challenge without a usable realm URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.o.allowHttpRealm)) {
      throw this.error(
        'AUTH_FAILED',
        `registry ${this.registry} points to token endpoint ${redactUrl(url)}; only https is accepted for registries reached over TLS`,
      );
    }
    return url;
  }

  private async requestToken(
    scopes: readonly string[],
    challenge: { readonly url: URL; readonly service?: string },
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const realm = challenge.url;
    const url = new URL(realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    // One `scope` parameter per resource (the token protocol's GET form).
    for (const s of scopes) url.searchParams.append('scope', s);
    // Basic credentials go to a realm whose host and port their binding names (the registry's own port is no
    // other port of its host): `url.host` carries the port unless it is the scheme's default.
    const authorization = this.credentials ? this.basicFor(url.host) : undefined;
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const { status, body } = await this.o.fetchToken(url, authorization, signal);
    if (status === 401 || status === 403) {
      throw this.error(
        'AUTH_FAILED',
        this.credentials
          ? `registry ${this.registry} refused ${this.credentials.label ?? 'the given username and password'} (token endpoint answered ${status}); check the username and password`
          : `registry ${this.registry} refused anonymous access (token endpoint answered ${status}); give a username and password for it`,
      );
    }
    if (status !== 200) {
      throw this.error(
        'AUTH_FAILED',
        `token endpoint ${redactUrl(realm)} of ${this.registry} answered ${status}`,
        status >= 500 || status === 429,
      );
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw this.error(
        'AUTH_FAILED',
        `token endpoint ${redactUrl(realm)} of ${this.registry} answered something that is not JSON`,
      );
    }
    const token =
      typeof parsed.access_token === 'string' && parsed.access_token
        ? parsed.access_token
        : typeof parsed.token === 'string'
          ? parsed.token
          : '';
    if (!token)
      throw this.error('AUTH_FAILED', `token endpoint ${redactUrl(realm)} of ${this.registry} returned no token`);
    const seconds = Math.max(
      MIN_TOKEN_SECONDS,
      typeof parsed.expires_in === 'number' ? parsed.expires_in : MIN_TOKEN_SECONDS,
    );
    return { header: `Bearer ${token}`, expiresAt: Date.now() + seconds * 1000 };
  }

  private error(code: ProtocolErrorCode, message: string, temporary = false): ProtocolError {
    return new ProtocolError(code, message, { temporary, side: this.o.side });
  }
}
