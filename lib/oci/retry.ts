/**
 * Retry policy as data: which answers are worth another try, and how long to wait.
 *
 * Short retries belong to single idempotent requests (GET, HEAD, manifest PUT, the upload POST, a
 * final PUT with a replayable body). A PATCH is never replayed here: on distribution-based registries
 * a PATCH whose answer was lost poisons the upload session, so the blob copier decides what to do.
 */

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** First backoff; doubled every attempt, with ±20 % jitter. */
  readonly baseDelayMs: number;
  /** Longest computed backoff. */
  readonly maxDelayMs: number;
  /** Longest wait a server's `Retry-After` may ask for (default 120 s); longer asks fail the request. */
  readonly maxRetryAfterMs?: number;
}

/** A registry asking for a longer pause than this is better retried by the queue, later. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 120_000;

/** Five attempts over roughly 6 s of backoff ride out a registry restart or a short 503 storm. */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 30_000 };

/** Statuses that a later identical request may turn into a success. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/** `Retry-After` as delta-seconds or an HTTP-date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Delay before attempt `attempt + 1` (attempt counts from 1), honouring a server's Retry-After. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS);
  const exp = policy.baseDelayMs * 2 ** (attempt - 1);
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.min(Math.round(exp * jitter), policy.maxDelayMs);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
