/**
 * The one error model of oci-import. Every error lib/ throws on purpose extends `OciImportError` and says:
 *
 * - `code`: a stable, upper-case code a job record, an HTTP answer or the CLI's exit message carries, one of
 *   the catalogue's (lib/error-codes.ts: side, temporary, HTTP status and meaning of each; docs/errors.md);
 * - `temporary`: whether the same work may succeed later (retried by the request retry, then by the queue);
 * - `side`: where it went wrong — the `source` registry, the `target` registry, the job `storage`, the
 *   deployment's `config`uration, or the caller's `request` — so a message can say whose problem it is;
 * - `cause`: the error underneath, when there is one.
 *
 * Only what is known to be temporary is retried. Errors we did not make are not, unless lib/http-policy.ts
 * knows their kind (a socket reset, an SDK's error carrying a 503): a bug's TypeError is thrown at once by every
 * retry loop, and a queue step that hits one fails its job at once, with code INTERNAL and the error's message
 * (lib/service/service.ts `onStepError`) — not retried `maxDequeueCount` times, nor moved to the poison queue.
 * This module depends on lib/error-codes.ts and lib/http-policy.ts only.
 */
import { isErrorCode, type ErrorCode } from './error-codes.js';
import { isTransientForeignError } from './http-policy.js';

export type { ErrorCode } from './error-codes.js';

export type ErrorSide = 'source' | 'target' | 'storage' | 'config' | 'request';

export interface OciImportErrorOptions extends ErrorOptions {
  readonly temporary?: boolean;
  readonly side?: ErrorSide;
}

export class OciImportError extends Error {
  override name = 'OciImportError';
  readonly temporary: boolean;
  side: ErrorSide | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: OciImportErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.temporary = options.temporary ?? false;
    this.side = options.side;
  }
}

/**
 * A server asked us to come back later (`Retry-After`) for longer than this process may wait. The queue
 * worker re-enqueues the step with that delay (or fails the job when even that is too long); the CLI fails,
 * unless told to wait.
 */
export class RateLimitedError extends OciImportError {
  override name = 'RateLimitedError';
  /** When the server said to come back (epoch ms). */
  readonly until: number;

  constructor(
    readonly retryAfterMs: number,
    what: string,
    options: OciImportErrorOptions = {},
  ) {
    const until = Date.now() + retryAfterMs;
    super(
      'RATE_LIMITED',
      `${what} asked to retry after ${formatDuration(retryAfterMs)} (at ${new Date(until).toISOString()})`,
      { temporary: true, ...options },
    );
    this.until = until;
  }
}

/** A deadline passed: a request's idle or total time, a body below the minimum rate, a step's budget. */
export class TimeoutError extends OciImportError {
  override name = 'TimeoutError';
  constructor(message: string, options: OciImportErrorOptions = {}) {
    super('TIMEOUT', message, { temporary: true, ...options });
  }
}

/** Work stopped because its owner stopped it (a step's hard deadline, a canceled job): never retried here. */
export class AbortedError extends OciImportError {
  override name = 'AbortedError';
  constructor(message: string, options: OciImportErrorOptions = {}) {
    super('ABORTED', message, { temporary: true, ...options });
  }
}

/**
 * Whether trying the same work again later may help: what the error says of itself, else whether it is a kind
 * known to be temporary (lib/http-policy.ts); an unknown error is not (see the module comment).
 */
export function isTemporary(err: unknown): boolean {
  if (err instanceof OciImportError) return err.temporary;
  const flag = (err as { temporary?: unknown } | null)?.temporary;
  if (typeof flag === 'boolean') return flag;
  return isTransientForeignError(err);
}

/** The stable code of any error, for job records and exit messages (`INTERNAL` for errors we did not make). */
export function errorCode(err: unknown): ErrorCode {
  if (err instanceof OciImportError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return isErrorCode(code) ? code : 'INTERNAL';
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Marks where an error of ours happened, unless it already says so; returns it. */
export function onSide<T>(err: T, side: ErrorSide): T {
  if (err instanceof OciImportError && err.side === undefined) err.side = side;
  return err;
}

/** `90 s`, `5 min`, `3 h 20 min`. */
export function formatDuration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}
