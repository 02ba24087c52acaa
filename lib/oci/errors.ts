/**
 * Typed errors of the registry client. One `RegistryError` for every non-success answer of a registry
 * (built by `registryErrorFrom`, which reads at most 64 KiB of the body), one `TransportError` for
 * connections that failed, one `ImportError` for refusals of the copy itself. Every error says
 * whether trying again may help (`temporary`): the queue worker re-enqueues temporary failures and
 * fails the job on the others.
 */

/** Error codes of the distribution spec (and the few extra ones real registries send). */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'BLOB_UPLOAD_UNKNOWN' | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN' | 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' | 'NAME_INVALID' | 'NAME_UNKNOWN'
  | 'SIZE_INVALID' | 'UNAUTHORIZED' | 'DENIED' | 'UNSUPPORTED' | 'TOOMANYREQUESTS' | 'RANGE_INVALID'
  | (string & {});

export interface RegistryDiagnostic {
  readonly code: RegistryErrorCode;
  readonly message: string;
  readonly detail?: unknown;
}

/** Bodies of error answers are read up to this size; a registry error is never larger in practice. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Removes query strings (upload `_state` tokens, signed CDN URLs) and userinfo from a URL for messages. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    u.username = '';
    u.password = '';
    const hadQuery = u.search !== '';
    u.search = '';
    return u.toString() + (hadQuery ? '?…' : '');
  } catch {
    return '<invalid url>';
  }
}

const TEMPORARY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  /** The first registry error code, else `HTTP_<status>`. */
  readonly code: string;
  readonly temporary: boolean;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly diagnostics: readonly RegistryDiagnostic[],
    readonly rawBody?: string,
    readonly retryAfterMs?: number,
  ) {
    const first = diagnostics[0];
    const what = diagnostics.length
      ? diagnostics.map((d) => `${d.code}: ${d.message}`).join('; ')
      : rawBody?.trim()
        ? rawBody.trim().slice(0, 300)
        : method === 'HEAD'
          ? '(a HEAD answer has no body to explain it)'
          : '(no error body)';
    super(`${method} ${url} answered ${status}: ${what}`);
    this.code = first?.code ?? `HTTP_${status}`;
    this.temporary = TEMPORARY_STATUS.has(status) || first?.code === 'TOOMANYREQUESTS';
  }

  /** True when the registry answered with this spec error code (or, without a body, this status). */
  has(code: RegistryErrorCode): boolean {
    return this.diagnostics.some((d) => d.code === code);
  }
}

/** Parses the spec's `{"errors":[{code,message,detail}]}`; tolerant of anything else. */
export function parseDiagnostics(body: string): RegistryDiagnostic[] {
  if (!body) return [];
  try {
    const parsed = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({ code: String(e.code ?? 'UNKNOWN'), message: String(e.message ?? ''), detail: e.detail }));
  } catch {
    return [];
  }
}

/** A connection-level failure (refused, reset, timed out) before a complete answer arrived. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: string;
  readonly temporary = true;
  constructor(readonly method: string, readonly url: string, cause: unknown) {
    const c = cause as { code?: string; message?: string };
    super(`${method} ${url} failed: ${c?.code ?? ''} ${c?.message ?? String(cause)}`.replace(/\s+/g, ' ').trim(), { cause });
    this.code = c?.code ?? 'TRANSPORT_ERROR';
  }
}

/** A ranged blob read returned a different number of bytes than asked for (retried). */
export class UnexpectedLengthError extends Error {
  override readonly name = 'UnexpectedLengthError';
  readonly code = 'UNEXPECTED_LENGTH';
  readonly temporary = true;
  constructor(readonly url: string, readonly expected: number, readonly got: number) {
    super(`unexpected length of body in response from ${url}: expected ${expected} bytes, got ${got}`);
  }
}

export type ImportErrorCode =
  | 'TOO_MANY_MANIFESTS' | 'TAG_EXISTS' | 'UNSUPPORTED_MANIFEST' | 'MANIFEST_TOO_LARGE' | 'DIGEST_MISMATCH'
  | 'NO_MATCHING_PLATFORM' | 'SOURCE_NOT_FOUND' | 'AUTH_REQUIRED' | 'AUTH_FAILED' | 'INVALID_REQUEST'
  | 'RANGE_INVALID' | 'BLOB_SIZE_MISMATCH';

/** The import itself cannot go on: a limit, a policy, a source that is not what it claims. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
  constructor(readonly code: ImportErrorCode, message: string, readonly temporary = false, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Whether an error of any kind is worth another attempt later. */
export function isTemporary(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { temporary?: unknown }).temporary === true;
}

/** The stable code of any of our errors, for job records and exit messages. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'INTERNAL';
}
