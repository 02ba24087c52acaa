/**
 * Signing in to an Azure Container Registry with an Entra ID identity (Azure/acr docs/AAD-OAuth.md):
 *
 * 0. `GET /v2/` without credentials, once per registry: the `WWW-Authenticate` Bearer challenge names the
 *    `service` and the token endpoint (`realm`) the next steps use, as azure-cli does (`acr/_docker_utils.py`:
 *    `_handle_challenge_phase`, then `_get_aad_token_after_challenge` posts the challenge's `service` to the
 *    realm host's `/oauth2/exchange`) and as the Azure SDKs' container-registry clients do (the challenge
 *    handler exchanges for the challenge's `service`). A registry whose service name is not its host name
 *    works that way; when the answer is not a Bearer challenge, the login server is the service;
 * 1. an Entra ID access token for the ACR audience (`https://containerregistry.azure.net/.default`) from the
 *    credential (the app's managed identity, or a token handed in as password);
 * 2. `POST /oauth2/exchange` (form: `grant_type=access_token`, `service`, [`tenant`], `access_token`) →
 *    `{"refresh_token"}`, an ACR refresh token (a JWT; about three hours), cached until a margin before its
 *    `exp`, shared by every scope;
 * 3. `POST /oauth2/token` (form: `grant_type=refresh_token`, `service`, one `scope` field per resource —
 *    `repository:<name>:pull[,push]` —, `refresh_token`) → `{"access_token"}`, cached per scope set until a
 *    margin before its `exp`;
 * 4. `Authorization: Bearer <access token>` on registry requests.
 *
 * Fetches are single-flight (forty parallel chunk requests cause one exchange and one token request). A 401
 * from the registry gets one fresh access token; a 401 from /oauth2/token (refresh token expired or revoked)
 * one fresh exchange. Tokens only ever go to the registry's own origin.
 */
import type { TokenCredential } from '@azure/identity';
import { mergeScopes, type Authenticator } from '../oci/auth.js';
import { parseChallenges, parseScopes, type Challenge } from '../oci/challenge.js';
import { redactUrl } from '../oci/errors.js';
import { isRetryableStatus } from '../http-policy.js';
import { DEFAULT_RETRY, oneAttempt, untilAborted } from '../retry.js';
import { TokenCache } from '../oci/token-cache.js';
import {
  AzureError,
  accessDenied,
  describeAnswer,
  isNetworkDenial,
  networkDenied,
  type AzureRegistryContext,
} from './errors.js';
import { call, postForm, type HttpAnswer, type HttpOptions } from './http.js';
import { jwtExpiry } from './jwt.js';

export { DEFAULT_ACR_AUDIENCE } from '../config.js';

/** `https://containerregistry.azure.net` → `https://containerregistry.azure.net/.default`. */
export function entraScope(audience: string): string {
  return `${audience.replace(/\/+$/, '')}/.default`;
}

export interface AcrExchangeOptions {
  /** Login server, `myregistry.azurecr.io` (with `:port` in tests). */
  readonly loginServer: string;
  readonly credential: TokenCredential;
  /** Entra ID scope of the token exchanged, e.g. `https://containerregistry.azure.net/.default`. */
  readonly scope: string;
  /** Sent as the exchange's `tenant` field when given (ACR's documented, optional field). */
  readonly tenant?: string;
  /** Plain HTTP (registries listed in INSECURE_REGISTRIES: tests). */
  readonly insecure?: boolean;
  /** For messages: role, identity, how the registry was given. `registry` defaults to loginServer. */
  readonly context: Omit<AzureRegistryContext, 'registry'> & { readonly registry?: string };
  readonly http?: HttpOptions;
  /** Clock (tests). */
  readonly now?: () => number;
}

/** Refresh tokens are renewed this long before they expire (at most half their lifetime). */
export const REFRESH_TOKEN_MARGIN_MS = 5 * 60_000;
/** Access tokens are renewed this long before they expire (at most half their lifetime). */
export const ACCESS_TOKEN_MARGIN_MS = 60_000;
/** A refresh token that does not say when it expires is kept this long (ACR's last about three hours). */
const UNKNOWN_REFRESH_LIFETIME_MS = 60 * 60_000;
/** An access token that does not say when it expires is kept this long (the token spec's default). */
const UNKNOWN_ACCESS_LIFETIME_MS = 60_000;

interface Cached {
  readonly token: string;
  readonly expiresAt: number;
  /** When to stop handing it out: `expiresAt` minus the margin. */
  readonly renewAt: number;
}

/**
 * `GET /v2/` without credentials: the status and the challenges of `WWW-Authenticate`, retried on 429/5xx and
 * broken connections like the /oauth2 calls.
 */
async function probeV2(url: URL, o: HttpOptions = {}): Promise<{ status: number; challenges: Challenge[] }> {
  const answer = await call('GET', url, {}, undefined, o);
  return { status: answer.status, challenges: parseChallenges(answer.headers['www-authenticate']) };
}

/** The repository of the first repository scope, for messages. */
function repositoryOf(scopes: readonly string[]): string | undefined {
  const s = scopes.find((x) => x.startsWith('repository:'));
  return s ? s.slice('repository:'.length, s.lastIndexOf(':')) : undefined;
}

export class AcrExchangeAuthenticator implements Authenticator {
  private readonly origin: string;
  private readonly ctx: AzureRegistryContext;
  private readonly now: () => number;
  private service: string;
  private tokenUrl: URL;
  private readonly exchangeUrl: URL;
  private refresh: Cached | undefined;
  private exchanging: Promise<Cached> | undefined;
  /** The `GET /v2/` challenge was read (step 0); `discovering` while it is being read. */
  private discovered = false;
  private discovering: Promise<void> | undefined;
  private readonly tokens = new TokenCache<Cached>((t) => t.renewAt > this.now());
  /**
   * The sign-in's requests make one attempt each: a sign-in runs inside the attempt of the registry request that
   * needs it, whose loop tries again, the sign-in with it (lib/retry.ts: no nested retries).
   */
  private readonly http: HttpOptions;

  constructor(private readonly o: AcrExchangeOptions) {
    this.http = { ...o.http, retry: oneAttempt(o.http?.retry ?? DEFAULT_RETRY) };
    const base = `${o.insecure ? 'http' : 'https'}://${o.loginServer}`;
    this.origin = new URL(base).origin;
    this.service = o.loginServer;
    this.tokenUrl = new URL('/oauth2/token', base);
    this.exchangeUrl = new URL('/oauth2/exchange', base);
    this.ctx = { ...o.context, registry: o.context.registry ?? o.loginServer };
    this.now = o.now ?? Date.now;
  }

  /**
   * The sign-in is shared by every request needing the same scopes (single-flight): it runs under its own request
   * deadlines (HttpOptions.timeouts), and each caller leaves it when its own signal aborts (a step's deadline).
   */
  async authorize(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    // GET /v2/ needs no scope: its challenge names one (registry:catalog:* on ACR), handled below.
    if (scopes.length === 0) return undefined;
    return `Bearer ${(await untilAborted(this.accessToken(mergeScopes(scopes), false), signal)).token}`;
  }

  async onUnauthorized(
    challenges: readonly Challenge[],
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (!bearer) return undefined;
    this.learn(bearer);
    // The challenged scope first: some registries read only the first.
    const merged = mergeScopes([...parseScopes(bearer.params.scope), ...scopes]);
    if (merged.length === 0) return undefined;
    return `Bearer ${(await untilAborted(this.accessToken(merged, true), signal)).token}`;
  }

  /**
   * Step 0, once (single-flight): the service and token endpoint from the registry's own challenge. Only a
   * Bearer challenge teaches anything; any other answer (200 of an anonymous registry, 403 of a firewall)
   * keeps the login server, and the exchange then reports what is wrong. A 429/5xx is not remembered.
   */
  private discover(): Promise<void> {
    if (this.discovered) return Promise.resolve();
    this.discovering ??= this.probe().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async probe(): Promise<void> {
    const { status, challenges } = await probeV2(new URL('/v2/', this.origin), this.http);
    const bearer = status === 401 ? challenges.find((c) => c.scheme === 'bearer') : undefined;
    if (bearer) this.learn(bearer);
    else if (isRetryableStatus(status)) {
      throw new AzureError(
        'AZURE_AUTH_FAILED',
        `registry ${this.ctx.registry}: GET /v2/ answered ${status}; it is retried later`,
        true,
      );
    }
    this.discovered = true;
  }

  /** Takes `service` and the token endpoint from a challenge; a challenge naming an endpoint on another origin teaches nothing. */
  private learn(bearer: Challenge): void {
    const realm = bearer.params.realm;
    let url: URL | undefined;
    if (realm) {
      try {
        url = new URL(realm);
      } catch {
        throw new AzureError(
          'AZURE_AUTH_FAILED',
          `registry ${this.ctx.registry} sent a Bearer challenge without a usable realm URL`,
        );
      }
      if (url.origin !== this.origin) {
        throw new AzureError(
          'AZURE_AUTH_FAILED',
          `registry ${this.ctx.registry} points to token endpoint ${redactUrl(url)} on another host; Entra ID sign-in sends tokens only to the registry itself (${this.origin}/oauth2/…)`,
        );
      }
      url.search = '';
    }
    if (bearer.params.service) this.service = bearer.params.service;
    if (url) this.tokenUrl = url;
  }

  // ---- access tokens (per scope set) ---------------------------------------------------------------

  private accessToken(scopes: readonly string[], force: boolean): Promise<Cached> {
    return this.tokens.get(scopes, () => this.requestAccessToken(scopes), force);
  }

  private async requestAccessToken(scopes: readonly string[]): Promise<Cached> {
    await this.discover();
    let refresh = await this.refreshToken();
    let answer = await this.postToken(refresh, scopes);
    if (answer.status === 401) {
      // The refresh token expired early or was revoked: one new exchange.
      if (this.refresh === refresh) this.refresh = undefined;
      refresh = await this.refreshToken();
      answer = await this.postToken(refresh, scopes);
    }
    if (answer.status !== 200) throw this.failure('token', answer, scopes);
    const token = this.field(answer, 'access_token', 'token');
    return this.cached(
      token,
      jwtExpiry(token) ?? this.expiresIn(answer) ?? this.now() + UNKNOWN_ACCESS_LIFETIME_MS,
      ACCESS_TOKEN_MARGIN_MS,
    );
  }

  private postToken(refresh: Cached, scopes: readonly string[]): Promise<HttpAnswer> {
    return postForm(
      this.tokenUrl,
      {
        grant_type: 'refresh_token',
        service: this.service,
        scope: scopes,
        refresh_token: refresh.token,
      },
      this.http,
    );
  }

  // ---- the refresh token (one per registry and identity) -------------------------------------------

  private refreshToken(): Promise<Cached> {
    if (this.refresh && this.refresh.renewAt > this.now()) return Promise.resolve(this.refresh);
    this.exchanging ??= this.exchange()
      .then((t) => {
        this.refresh = t;
        return t;
      })
      .finally(() => {
        this.exchanging = undefined;
      });
    return this.exchanging;
  }

  private async exchange(): Promise<Cached> {
    const entraToken = await this.entraToken();
    const answer = await postForm(
      this.exchangeUrl,
      {
        grant_type: 'access_token',
        service: this.service,
        tenant: this.o.tenant,
        access_token: entraToken,
      },
      this.http,
    );
    if (answer.status !== 200) throw this.failure('exchange', answer, []);
    const token = this.field(answer, 'refresh_token');
    return this.cached(token, jwtExpiry(token) ?? this.now() + UNKNOWN_REFRESH_LIFETIME_MS, REFRESH_TOKEN_MARGIN_MS);
  }

  private async entraToken(): Promise<string> {
    let token: string | undefined;
    try {
      token = (await this.o.credential.getToken(this.o.scope))?.token;
    } catch (err) {
      if (err instanceof AzureError) throw err;
      const reason = String((err as Error)?.message ?? err)
        .replace(/\s+/g, ' ')
        .slice(0, 400);
      throw new AzureError(
        'IDENTITY_UNAVAILABLE',
        `could not get an Entra ID token for ${this.o.scope} from ${this.ctx.identity}: ${reason} — in Azure, give the app a managed identity (and set AZURE_CLIENT_ID to its client ID when it is user-assigned)`,
        /network|ECONN|ETIMEDOUT|timeout/i.test(reason),
        { cause: err },
      );
    }
    if (!token)
      throw new AzureError(
        'IDENTITY_UNAVAILABLE',
        `${this.ctx.identity} returned no Entra ID token for ${this.o.scope}`,
      );
    return token;
  }

  // ---- answers -------------------------------------------------------------------------------------

  private cached(token: string, expiresAt: number, margin: number): Cached {
    const now = this.now();
    return { token, expiresAt, renewAt: expiresAt - Math.min(margin, Math.max(0, expiresAt - now) / 2) };
  }

  private expiresIn(answer: HttpAnswer): number | undefined {
    try {
      const s = (JSON.parse(answer.body) as { expires_in?: unknown }).expires_in;
      return typeof s === 'number' && s > 0 ? this.now() + s * 1000 : undefined;
    } catch {
      return undefined;
    }
  }

  /** The first non-empty string field of a 200 answer among `names`. */
  private field(answer: HttpAnswer, ...names: string[]): string {
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(answer.body) as Record<string, unknown>;
    } catch {
      // reported below
    }
    for (const n of names) {
      const v = parsed[n];
      if (typeof v === 'string' && v) return v;
    }
    throw new AzureError(
      'AZURE_AUTH_FAILED',
      `registry ${this.ctx.registry} answered ${names[0] === 'refresh_token' ? '/oauth2/exchange' : '/oauth2/token'} without a ${names[0]}`,
    );
  }

  private failure(step: 'exchange' | 'token', answer: HttpAnswer, scopes: readonly string[]): AzureError {
    const { status, body } = answer;
    const endpoint = `/oauth2/${step}`;
    const answered = `${endpoint} answered ${describeAnswer(status, body)}`;
    if (isNetworkDenial(status, body)) return networkDenied(this.ctx, answered);
    if (status === 401 && step === 'exchange') {
      return new AzureError(
        'TOKEN_REJECTED',
        this.ctx.crossTenant
          ? `registry ${this.ctx.registry} refused ${this.ctx.identity} (${answered}): it must be an Entra ID access token of the registry's tenant for the audience ${this.o.scope.replace(/\/\.default$/, '')}, not expired`
          : `registry ${this.ctx.registry} refused the Entra ID token of ${this.ctx.identity} (${answered}): the registry must be in the app's tenant, and ACR_AUDIENCE (${this.o.scope.replace(/\/\.default$/, '')}) an audience it accepts`,
      );
    }
    if (status === 401 || status === 403) return accessDenied(this.ctx, repositoryOf(scopes), answered);
    if (status === 404) {
      return new AzureError(
        'NOT_ACR',
        `registry ${this.ctx.registry} has no ${endpoint} endpoint (404): Entra ID sign-in works with Azure Container Registry only; for other registries give a username and password`,
      );
    }
    return new AzureError(
      'AZURE_AUTH_FAILED',
      `registry ${this.ctx.registry}: ${answered}`,
      status === 429 || status >= 500,
    );
  }
}
