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
import type { Challenge } from './challenge.js';
import { parseScopes } from './challenge.js';
import { ImportError, redactUrl } from './errors.js';
import { TokenCache } from './token-cache.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** What a registry client needs from an authentication scheme (basic, bearer, Entra ID exchange …). */
export interface Authenticator {
  /** The Authorization header to send up front for a request needing `scopes`, when one is known. */
  authorize(scopes: readonly string[]): Promise<string | undefined>;
  /** Learns from a 401 answer; returns a header worth one retry, or undefined when nothing can help. */
  onUnauthorized(challenges: readonly Challenge[], scopes: readonly string[]): Promise<string | undefined>;
}

/** Fetches a token endpoint URL (GET) with optional Basic credentials; returns status and body text. */
export type TokenFetcher = (url: URL, authorization: string | undefined) => Promise<{ status: number; body: string }>;

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

export class ChallengeAuthenticator implements Authenticator {
  private scheme: 'basic' | 'bearer' | undefined;
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new TokenCache<CachedToken>((t) => t.expiresAt - TOKEN_REFRESH_MARGIN_MS > Date.now());

  constructor(
    private readonly registry: string,
    private readonly credentials: Credentials | undefined,
    private readonly fetchToken: TokenFetcher,
    /** Plain-HTTP token realms are accepted only for registries that are themselves plain HTTP. */
    private readonly allowHttpRealm: boolean,
  ) {}

  async authorize(scopes: readonly string[]): Promise<string | undefined> {
    if (this.scheme === 'basic' && this.credentials) return basicHeader(this.credentials);
    if (this.scheme !== 'bearer') return undefined;
    const merged = mergeScopes(scopes);
    return (this.tokens.peek(merged) ?? await this.tokens.get(merged, () => this.requestToken(merged))).header;
  }

  async onUnauthorized(challenges: readonly Challenge[], scopes: readonly string[]): Promise<string | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.scheme = 'bearer';
      this.realm = this.checkRealm(bearer.params.realm);
      this.service = bearer.params.service;
      // The challenged scope goes first: some registries only read the first scope parameter.
      const merged = mergeScopes([...parseScopes(bearer.params.scope), ...scopes]);
      return (await this.tokens.get(merged, () => this.requestToken(merged), true)).header;
    }
    if (basic) {
      this.scheme = 'basic';
      if (!this.credentials) {
        throw new ImportError('AUTH_REQUIRED', `registry ${this.registry} requires credentials (Basic); give a username and password for it`);
      }
      return basicHeader(this.credentials);
    }
    return undefined;
  }

  private checkRealm(realm: string | undefined): URL {
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new ImportError('AUTH_FAILED', `registry ${this.registry} sent a Bearer challenge without a usable realm URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.allowHttpRealm)) {
      throw new ImportError('AUTH_FAILED', `registry ${this.registry} points to token endpoint ${redactUrl(url)}; only https is accepted for registries reached over TLS`);
    }
    return url;
  }

  private async requestToken(scopes: readonly string[]): Promise<CachedToken> {
    const realm = this.realm;
    if (!realm) throw new ImportError('AUTH_FAILED', `no token endpoint known for ${this.registry}`);
    const url = new URL(realm);
    if (this.service) url.searchParams.set('service', this.service);
    // One `scope` parameter per resource (the token protocol's GET form).
    for (const s of scopes) url.searchParams.append('scope', s);
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const { status, body } = await this.fetchToken(url, this.credentials ? basicHeader(this.credentials) : undefined);
    if (status === 401 || status === 403) {
      throw new ImportError('AUTH_FAILED', this.credentials
        ? `registry ${this.registry} refused the credentials for user "${this.credentials.username}" (token endpoint answered ${status}); check the username and password`
        : `registry ${this.registry} refused anonymous access (token endpoint answered ${status}); give a username and password for it`);
    }
    if (status !== 200) {
      throw new ImportError('AUTH_FAILED', `token endpoint ${redactUrl(realm)} of ${this.registry} answered ${status}`, status >= 500 || status === 429);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      throw new ImportError('AUTH_FAILED', `token endpoint ${redactUrl(realm)} of ${this.registry} answered something that is not JSON`);
    }
    const token = typeof parsed.access_token === 'string' && parsed.access_token ? parsed.access_token
      : typeof parsed.token === 'string' ? parsed.token : '';
    if (!token) throw new ImportError('AUTH_FAILED', `token endpoint ${redactUrl(realm)} of ${this.registry} returned no token`);
    const seconds = Math.max(MIN_TOKEN_SECONDS, typeof parsed.expires_in === 'number' ? parsed.expires_in : MIN_TOKEN_SECONDS);
    return { header: `Bearer ${token}`, expiresAt: Date.now() + seconds * 1000 };
  }
}
