/**
 * The one retry loop of lib/, and the cancellable waits it is made of. Every retried thing — a registry
 * request, a ranged GET part, an upload session, a token or Resource Manager call, an ETag-guarded
 * update — calls `retry(fn, policy, options)`.
 *
 * A policy is data (oras-go `retry/policy.go`): how many attempts, the backoff, and the longest
 * `Retry-After` worth waiting in-process. A server asking for a longer pause gets a `RateLimitedError`
 * at once (the queue worker then re-enqueues the step with that delay); waiting never outlives the
 * caller's `AbortSignal` (a step's deadline, a canceled job). Only errors known to be temporary are tried
 * again (`isTemporary`, lib/errors.ts): a bug is thrown at its first attempt.
 *
 * No nested retries (go-containerregistry's `retry.Never(ctx)`, made a rule): a loop whose attempt sends
 * requests sends them with `oneAttempt(policy)`, so the outer loop owns the retries (an upload session's HEAD,
 * status GET and PUT, a part's GET, a manifest PUT that waits out a link race; a request's token fetch and ACR
 * exchange, sent inside the request's own attempt). Attempts multiply otherwise: five request attempts inside
 * five session attempts is 25 requests to a registry that is down. Work an attempt starts but does not own (a
 * part fetched ahead, a checkpoint written behind) retries on its own. The rule is kept by the callers, not by an
 * AsyncLocalStorage scope around every attempt: on Node.js 20 that scope turns on promise hooks for the whole
 * process, 5–9 % of the CPU of a copy of several blobs at once (docs/architecture.md, "No nested retries").
 */
import { AbortedError, OciImportError, RateLimitedError, errorMessage, isTemporary } from './errors.js';
import { SHORT_RETRY_AFTER_MS } from './http-policy.js';

export { SHORT_RETRY_AFTER_MS, parseRetryAfter } from './http-policy.js';

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** First backoff; doubled every attempt, with ±20 % jitter. */
  readonly baseDelayMs: number;
  /** Longest computed backoff. */
  readonly maxDelayMs: number;
  /** Longest `Retry-After` waited in-process; a longer one is a RateLimitedError at once (default 30 s). */
  readonly maxRetryAfterMs?: number;
}

/**
 * Five attempts with 0.2 + 0.4 + 0.8 + 1.6 s ≈ 3 s of backoff between them: enough for a reset
 * connection or a registry's brief 503, short enough that a step's budget is not spent waiting.
 */
export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 30_000,
  maxRetryAfterMs: SHORT_RETRY_AFTER_MS,
};

/** One attempt, no waiting: for requests that must not be sent twice (a PATCH, a streamed body). */
export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 1 };

export interface RetryOptions {
  readonly signal?: AbortSignal;
  /** Which failures are worth another attempt (default `isTemporary`). */
  readonly retryable?: (err: unknown) => boolean;
  /** Told before each wait (logs, progress notices). */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * The policy for what an attempt of a loop under `policy` sends: one attempt, and the same longest Retry-After worth
 * waiting (a longer one is a RateLimitedError, which the loop passes on as it is).
 */
export function oneAttempt(policy: RetryPolicy): RetryPolicy {
  return { ...policy, maxAttempts: 1 };
}

/**
 * Runs `fn` until it succeeds, a failure is not retryable, the attempts are spent, or `signal` aborts. What `fn`
 * sends is sent with `oneAttempt(policy)` (the no-nesting rule: this loop decides about another attempt).
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  o: RetryOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(o.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      // Our own deadline or cancellation wins over whatever the interrupted attempt threw.
      throwIfAborted(o.signal);
      if (err instanceof RateLimitedError) throw err;
      const retryAfter = retryAfterOf(err);
      if (
        retryAfter !== undefined &&
        retryAfter > (policy.maxRetryAfterMs ?? SHORT_RETRY_AFTER_MS) &&
        isTemporary(err)
      ) {
        throw new RateLimitedError(retryAfter, errorMessage(err), { side: sideOf(err), cause: err });
      }
      if (attempt >= policy.maxAttempts || !(o.retryable ?? isTemporary)(err)) throw err;
      const delay = retryAfter ?? backoffDelay(policy, attempt);
      o.onRetry?.(err, attempt, delay);
      await sleep(delay, o.signal);
    }
  }
}

/** Backoff before attempt `attempt + 1` (attempt counts from 1). */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const exp = policy.baseDelayMs * 2 ** (attempt - 1);
  return Math.min(Math.round(exp * (0.8 + Math.random() * 0.4)), policy.maxDelayMs);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Throws the signal's reason when it has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** The reason an abort gives, as one of our errors (AbortSignal.timeout's DOMException included). */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof OciImportError) return r;
  return new AbortedError(r instanceof Error ? r.message : 'the work was stopped', { cause: r });
}

/**
 * `work`, or the signal's reason as soon as it aborts — whichever comes first. For shared work (a single-flight
 * token fetch) that one caller's abort must not end for the others: the work goes on, bounded by its own deadlines.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** An AbortSignal that aborts with `reason()` after `ms` (and whenever `parent` aborts). */
export function deadlineSignal(
  ms: number,
  reason: () => Error,
  parent?: AbortSignal,
): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(reason()), Math.max(0, ms));
  const onParent = (): void => controller.abort(parent!.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}

function retryAfterOf(err: unknown): number | undefined {
  const ms = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === 'number' && ms >= 0 ? ms : undefined;
}

function sideOf(err: unknown): OciImportError['side'] {
  return err instanceof OciImportError ? err.side : undefined;
}
