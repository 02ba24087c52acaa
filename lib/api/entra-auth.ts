/**
 * Entra ID bearer tokens for the HTTP functions (AUTH_MODE=entra): the app checks every request itself, with
 * `jose` (no hand-written crypto):
 * - issuer: `<ENTRA_AUTHORITY_HOST>/<tenant>/v2.0` (v2.0 tokens) or `https://sts.windows.net/<tenant>/` (v1.0);
 * - audience: one of ENTRA_AUDIENCE (the API's application ID URI, v1.0 tokens; its client ID, v2.0 tokens);
 * - signature: RS256 only (`alg: none` and HMAC refused), against the keys published at the `jwks_uri` of the
 *   tenant's OpenID configuration (`<authority>/<tenant>/v2.0/.well-known/openid-configuration`), cached and
 *   fetched again when a token names a key id the cache lacks (Entra rolls its keys);
 * - `exp` (required) and `nbf` with CLOCK_SKEW_SECONDS of tolerance;
 * - the `roles` claim: `Imports.Read` reads (status, list, the status page, the OpenAPI document),
 *   `Imports.Write` also imports and cancels.
 *
 * The OpenID configuration and the keys are fetched from the app's own configured authority, never from a
 * place a caller names, so these requests do not go through the registry address guard (which would refuse
 * a loopback authority in tests); instead the authority must be https (plain http only on loopback, see
 * `endpointUrl` in lib/config.ts) and the `jwks_uri` must be on the authority's own origin.
 */
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload } from 'jose';
import type { CallerAuth } from '../config.js';
import type { ErrorCode } from '../error-codes.js';
import type { JobCaller } from '../store/types.js';

/** Tolerance for `exp` and `nbf`: clocks of the token issuer and this app may differ a little. */
export const CLOCK_SKEW_SECONDS = 60;
/** A key set fetched this recently is not fetched again for an unknown key id (a flood of forged kids). */
export const JWKS_COOLDOWN_MS = 30_000;
/** Keys are fetched again at least this often. */
export const JWKS_MAX_AGE_MS = 24 * 3_600_000;
/** Deadline of one request to the authority. */
export const AUTHORITY_TIMEOUT_MS = 10_000;

export const ROLE_READ = 'Imports.Read';
export const ROLE_WRITE = 'Imports.Write';

/** What a request needs: `read` (Imports.Read or Imports.Write) or `write` (Imports.Write). */
export type Access = 'read' | 'write';

/** Who called, as recorded on a job and in logs: object ID and client application ID, never the token. */
export type Caller = JobCaller;

/** Why a request is refused: 401 (no token or a bad one) or 403 (a good token without the role). */
export class CallerError extends Error {
  override name = 'CallerError';
  constructor(
    readonly status: 401 | 403,
    readonly code: ErrorCode,
    message: string,
    readonly bearerError?: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
  ) {
    super(message);
  }

  /** RFC 6750 section 3: no error code when the request had no token at all. */
  get wwwAuthenticate(): string {
    return this.bearerError
      ? `Bearer error="${this.bearerError}", error_description="${this.message.replace(/["\\]/g, "'")}"`
      : 'Bearer';
  }
}

type Fetch = typeof fetch;

/** The issuers a token of `tenantId` may carry. */
export function issuersOf(auth: Extract<CallerAuth, { mode: 'entra' }>): string[] {
  return [`${auth.authorityHost}/${auth.tenantId}/v2.0`, `https://sts.windows.net/${auth.tenantId}/`];
}

/** The bearer token of an `Authorization` header, or a CallerError. */
export function bearerToken(header: string | null): string {
  if (header === null || header.trim() === '')
    throw new CallerError(
      401,
      'UNAUTHORIZED',
      'this API needs an Entra ID access token: send Authorization: Bearer <token>',
    );
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  if (!m)
    throw new CallerError(401, 'UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"', 'invalid_request');
  return m[1]!;
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const v = payload[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 128 ? v : undefined;
}

/** The `roles` claim as a list (absent or malformed: none). */
export function rolesOf(payload: JWTPayload): string[] {
  return Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
}

export function allows(roles: readonly string[], access: Access): boolean {
  return roles.includes(ROLE_WRITE) || (access === 'read' && roles.includes(ROLE_READ));
}

/** Validates Entra ID access tokens for one tenant and audience. */
export class EntraValidator {
  private jwks?: Promise<ReturnType<typeof createRemoteJWKSet>>;

  constructor(
    private readonly auth: Extract<CallerAuth, { mode: 'entra' }>,
    private readonly fetchImpl: Fetch = fetch,
    /** Least time between two key fetches (JWKS_COOLDOWN_MS; tests shorten it). */
    private readonly cooldownMs = JWKS_COOLDOWN_MS,
  ) {}

  /** The caller of a valid token holding the role `access` needs; else a CallerError (401 or 403). */
  async check(authorization: string | null, access: Access): Promise<Caller> {
    const token = bearerToken(authorization);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.keys(), {
        algorithms: ['RS256'],
        issuer: issuersOf(this.auth),
        audience: [...this.auth.audiences],
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ['exp', 'iss', 'aud'],
      }));
    } catch (err) {
      throw this.refusal(err);
    }
    const roles = rolesOf(payload);
    if (!allows(roles, access)) {
      const need = access === 'write' ? ROLE_WRITE : `${ROLE_READ} or ${ROLE_WRITE}`;
      throw new CallerError(
        403,
        'FORBIDDEN',
        `the token is valid but lacks the app role ${need} (roles: ${roles.join(', ').slice(0, 200) || 'none'})`,
        'insufficient_scope',
      );
    }
    const oid = stringClaim(payload, 'oid');
    const appid = stringClaim(payload, 'appid') ?? stringClaim(payload, 'azp');
    return { ...(oid ? { oid } : {}), ...(appid ? { appid } : {}) };
  }

  /** A token problem is the caller's (401); anything else (the authority unreachable) is the app's. */
  private refusal(err: unknown): Error {
    if (err instanceof CallerError || err instanceof AuthorityError) return err;
    const why =
      err instanceof errors.JWTExpired
        ? 'the token has expired'
        : err instanceof errors.JWTClaimValidationFailed
          ? `the token's ${err.claim} claim is not accepted here (${err.reason})`
          : err instanceof errors.JOSEAlgNotAllowed
            ? 'the token is not signed with RS256'
            : err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys
              ? 'the token is not signed by a key of the tenant'
              : err instanceof errors.JWSSignatureVerificationFailed
                ? "the token's signature does not verify"
                : err instanceof errors.JWTInvalid ||
                    err instanceof errors.JWSInvalid ||
                    err instanceof errors.JOSENotSupported
                  ? 'the token is not a valid signed JWT'
                  : undefined;
    if (why) return new CallerError(401, 'INVALID_TOKEN', why, 'invalid_token');
    return new AuthorityError(
      `the tenant's signing keys could not be read (${err instanceof Error ? err.message : String(err)})`,
    );
  }

  /** The tenant's key set: its jwks_uri read once from the OpenID configuration (again after a failure). */
  private keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    this.jwks ??= this.discover().catch((err: unknown) => {
      this.jwks = undefined;
      throw err;
    });
    return this.jwks;
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const authority = new URL(this.auth.authorityHost);
    const url = `${this.auth.authorityHost}/${this.auth.tenantId}/v2.0/.well-known/openid-configuration`;
    let doc: unknown;
    try {
      const res = await this.fetchImpl(url, { signal: AbortSignal.timeout(AUTHORITY_TIMEOUT_MS), redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = await res.json();
    } catch (err) {
      throw new AuthorityError(`the OpenID configuration ${url} could not be read (${(err as Error).message})`);
    }
    const jwksUri = (doc as { jwks_uri?: unknown } | null)?.jwks_uri;
    if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri) || new URL(jwksUri).origin !== authority.origin) {
      throw new AuthorityError(`the OpenID configuration ${url} names no jwks_uri on ${authority.origin}`);
    }
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: AUTHORITY_TIMEOUT_MS,
      cooldownDuration: this.cooldownMs,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      [customFetch]: (input: string | URL | Request, init?: RequestInit) =>
        this.fetchImpl(input, { ...init, redirect: 'error' }),
    });
  }
}

/** The authority (its OpenID configuration or keys) could not be reached: the app's fault, not the caller's (503). */
export class AuthorityError extends Error {
  override name = 'AuthorityError';
}
