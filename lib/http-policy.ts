/**
 * The request policy of the three HTTP senders — registries (lib/oci/transport.ts), the Azure sign-in and
 * Resource Manager calls (lib/azure/http.ts) and the CLI's client of a deployed service (lib/cli/client.ts):
 * which answers and which connection failures a later identical request may turn into a success, how long a
 * server's `Retry-After` asks us to wait, and the request deadlines. Each sender applies it; none keeps a list
 * of its own (test/unit/http-policy.test.ts sends the same table of answers through all three).
 *
 * Only what is known to be temporary is: an error nobody classified (a bug's TypeError, an SDK error of a kind
 * not listed here) is not retried (lib/errors.ts `isTemporary`). This module depends on nothing.
 */

/**
 * Statuses that a later identical request may turn into a success (go-containerregistry `transport.Error.Temporary`,
 * regclient `reghttp`): request timeout, too early, too many requests, and the server-side 5xx that say "not now".
 * 501 (not implemented) and 505 are answers, not moods.
 */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Whether an answer with this status is worth sending the same request again. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/**
 * Connection-level failures known to be temporary: the peer reset, refused (a registry restarting) or went
 * silent, a name lookup that may answer next time, and undici's own socket and timeout errors. Anything
 * else a socket throws (an invalid header, a TLS certificate refused, an unknown host) is not: sending the
 * same request again would fail the same way.
 */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // a body cut short: the connection closed before the promised Content-Length, or the stream before its end
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
  // the Azure SDKs' RestError for a request that could not be sent, when the socket gave no code of its own
  'REQUEST_SEND_ERROR',
]);

/** undici's and the socket's timeouts: reported as our TIMEOUT. */
export const TIMEOUT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/** The first `code` in an error's cause chain (fetch wraps the socket's error in a TypeError's `cause`). */
export function networkCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Whether a connection failure is one of the known temporary ones (anywhere in its cause chain). */
export function isTransientNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return true;
  }
  return false;
}

/**
 * An error of an SDK we call (Azure Storage's RestError): temporary when it carries a retryable HTTP status or
 * a known transient connection code, else not. Its own retry policy ran already; the queue's is the next.
 */
export function isTransientForeignError(err: unknown): boolean {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && isRetryableStatus(status)) return true;
  return isTransientNetworkError(err);
}

/** `Retry-After` as delta-seconds or an HTTP-date, in ms; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | null | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A `Retry-After` up to this long is waited where the work runs; longer ones go back to the queue. */
export const SHORT_RETRY_AFTER_MS = 30_000;

/** No answer headers, or no body byte, for this long ends a request (REQUEST_TIMEOUT_SECONDS' default). */
export const DEFAULT_IDLE_MS = 30_000;

/** Bodies slower than this over a window end (MIN_BYTES_PER_SECOND's default). */
export const DEFAULT_MIN_BYTES_PER_SECOND = 64 * 1024;

/**
 * The CLI's calls to a deployed service answer small JSON documents: an attempt that has no complete answer in
 * this long ends (TIMEOUT, temporary; a POST is repeatable by its Repeatability-Request-ID).
 */
export const CLIENT_ANSWER_MS = 2 * DEFAULT_IDLE_MS;
