/**
 * Errors of the registry client, all `OciImportError`s (lib/errors.ts):
 *
 * - `RegistryError`: a registry answered with a status we did not expect. Its message quotes the
 *   registry's error JSON (`errors[].code/message`, the distribution spec's form) and never a raw body:
 *   a redirect target or an internal service must not get its answer copied into a job's status.
 * - `TransportError`: the connection failed before a complete answer arrived (refused, reset, timed out).
 * - `UnexpectedLengthError`: a blob body of the wrong length (retried: the next read may be whole).
 * - `ProtocolError`: the client refuses to go on — a manifest too large or not what its digest says, a
 *   redirect to plain HTTP, an upload Location or a `Link` on another origin, a credential not bound
 *   to the host asking for it.
 *
 * Whichever side a client serves (`source` or `target`) is stamped on its errors.
 */
import { isErrorCode } from '../error-codes.js';
import { OciImportError, TimeoutError, type OciImportErrorOptions } from '../errors.js';
import { TIMEOUT_NETWORK_CODES, isRetryableStatus, isTransientNetworkError } from '../http-policy.js';

/** Error codes of the distribution spec (and the few extra ones real registries send). */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | (string & {});

export interface RegistryDiagnostic {
  readonly code: RegistryErrorCode;
  readonly message: string;
}

/** Bodies of error answers are read up to this size; a registry error is never larger in practice. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Removes query strings (upload `_state` tokens, signed CDN URLs) and userinfo from a URL for messages. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    // http(s), every URL a registry request has: the parts kept, put together (no setters, each of which re-parses)
    if (u.protocol === 'https:' || u.protocol === 'http:')
      return `${u.protocol}//${u.host}${u.pathname}${u.hash}${u.search ? '?…' : ''}`;
    u.username = '';
    u.password = '';
    const hadQuery = u.search !== '';
    u.search = '';
    return u.toString() + (hadQuery ? '?…' : '');
  } catch {
    return '<invalid url>';
  }
}

export class RegistryError extends OciImportError {
  override name = 'RegistryError';

  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly diagnostics: readonly RegistryDiagnostic[],
    options: OciImportErrorOptions & { readonly retryAfterMs?: number } = {},
  ) {
    const what = diagnostics.length
      ? diagnostics
          .map((d) => `${d.code}: ${d.message}`)
          .join('; ')
          .slice(0, 500)
      : method === 'HEAD'
        ? '(a HEAD answer has no body to explain it)'
        : '(no registry error in the answer)';
    // a code of the distribution spec is ours too (lib/error-codes.ts); a registry's own goes in the message only
    const code = diagnostics[0]?.code;
    super(
      code !== undefined && isErrorCode(code) ? code : `HTTP_${status}`,
      `${method} ${url} answered ${status}: ${what}`,
      {
        temporary: isRetryableStatus(status) || diagnostics.some((d) => d.code === 'TOOMANYREQUESTS'),
        ...options,
      },
    );
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The server's `Retry-After`, in ms, when it sent one. */
  readonly retryAfterMs: number | undefined;

  /** True when the registry answered with this spec error code. */
  has(code: RegistryErrorCode): boolean {
    return this.diagnostics.some((d) => d.code === code);
  }
}

/** Parses the spec's `{"errors":[{code,message}]}`; anything else yields nothing (and is never quoted). */
export function parseDiagnostics(body: string): RegistryDiagnostic[] {
  if (!body) return [];
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({ code: String(e.code ?? 'UNKNOWN').slice(0, 64), message: String(e.message ?? '').slice(0, 300) }));
  } catch {
    return [];
  }
}

/**
 * A connection-level failure (refused, reset, timed out) before a complete answer arrived: temporary when its kind
 * is known to be (lib/http-policy.ts `TRANSIENT_NETWORK_CODES`), else not (a certificate refused, a bad header).
 */
export class TransportError extends OciImportError {
  override name = 'TransportError';

  constructor(
    readonly method: string,
    readonly url: string,
    cause: unknown,
    options: OciImportErrorOptions = {},
  ) {
    const c = cause as { code?: string; message?: string } | undefined;
    const code =
      c?.code && TIMEOUT_NETWORK_CODES.has(c.code)
        ? 'TIMEOUT'
        : c?.code && /^E[A-Z]+$/.test(c.code) && isErrorCode(c.code)
          ? c.code
          : 'CONNECTION_FAILED';
    super(
      code,
      `${method} ${url} failed: ${c?.code ?? ''} ${c?.message ?? String(cause)}`.replace(/\s+/g, ' ').trim(),
      { temporary: isTransientNetworkError(cause), cause, ...options },
    );
  }
}

/** Turns whatever a request or body read threw into one of our errors (ours pass through unchanged). */
export function transportFailure(
  method: string,
  url: string | URL,
  err: unknown,
  side?: OciImportErrorOptions['side'],
): OciImportError {
  const ours = ownError(err);
  if (ours) {
    if (ours.side === undefined) ours.side = side;
    return ours;
  }
  return new TransportError(method, redactUrl(url), err, { side });
}

/** The first of our errors in a cause chain (a connector's refusal arrives wrapped by undici). */
function ownError(err: unknown): OciImportError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof OciImportError) return e;
  }
  return undefined;
}

/** A ranged blob read returned a different number of bytes than asked for (retried). */
export class UnexpectedLengthError extends OciImportError {
  override name = 'UnexpectedLengthError';
  constructor(
    readonly url: string,
    readonly expected: number,
    readonly got: number,
    options: OciImportErrorOptions = {},
  ) {
    super(
      'UNEXPECTED_LENGTH',
      `unexpected length of body in response from ${url}: expected ${expected} bytes, got ${got}`,
      { temporary: true, ...options },
    );
  }
}

export type ProtocolErrorCode =
  | 'MANIFEST_TOO_LARGE'
  | 'DIGEST_MISMATCH'
  | 'RANGE_INVALID'
  | 'AUTH_REQUIRED'
  | 'AUTH_FAILED'
  | 'UNSUPPORTED_MANIFEST'
  | 'INSECURE_REDIRECT'
  | 'TOO_MANY_REDIRECTS'
  | 'UNEXPECTED_UPLOAD_LOCATION'
  | 'CROSS_ORIGIN_LINK'
  | 'TOO_MANY_TAGS'
  | 'CREDENTIAL_NOT_ALLOWED'
  | 'NO_LOCATION'
  | 'INVALID_ANSWER'
  | 'INVALID_PLATFORM'
  | 'TOO_MANY_REFERRERS';

/** The client will not go on: what the registry did is outside what we accept. */
export class ProtocolError extends OciImportError {
  override name = 'ProtocolError';
  constructor(code: ProtocolErrorCode, message: string, options: OciImportErrorOptions = {}) {
    super(code, message, options);
  }
}

export { TimeoutError };
