/** The one retry loop: attempts, what is retried, Retry-After (waited, or RATE_LIMITED at once), cancellation. */
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  OciImportError,
  RateLimitedError,
  TimeoutError,
  errorCode,
  isTemporary,
} from '../../lib/errors.js';
import { RegistryError } from '../../lib/oci/errors.js';
import { TransportError } from '../../lib/oci/errors.js';
import { deadlineSignal, oneAttempt, parseRetryAfter, retry, sleep, type RetryPolicy } from '../../lib/retry.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 200 };
const temporary = () => new OciImportError('STORAGE_ERROR', 'try again', { temporary: true });

describe('retry', () => {
  it('tries until success, at most maxAttempts times', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        if (++calls < 3) throw temporary();
        return 'ok';
      }, policy),
    ).resolves.toBe('ok');
    expect(calls).toBe(3);

    calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw temporary();
      }, policy),
    ).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    expect(calls).toBe(4);
  });

  it('does not retry what is not temporary, nor what the predicate refuses', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new OciImportError('INVALID_REQUEST', 'no', { temporary: false });
      }, policy),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw temporary();
        },
        policy,
        { retryable: () => false },
      ),
    ).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    expect(calls).toBe(1);
  });

  it('waits a short Retry-After and fails a long one at once with RATE_LIMITED and the time', async () => {
    const answer = (seconds: number) =>
      new RegistryError('GET', 'https://r.example/v2/a/blobs/x', 429, [], { retryAfterMs: seconds * 1000 });
    let calls = 0;
    const t0 = Date.now();
    await retry(async () => {
      if (++calls === 1) throw answer(0.1);
      return 'ok';
    }, policy);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);

    calls = 0;
    const err = await retry(async () => {
      calls++;
      throw answer(999_999);
    }, policy).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toMatchObject({ code: 'RATE_LIMITED', temporary: true, retryAfterMs: 999_999_000 });
    expect((err as RateLimitedError).message).toMatch(/asked to retry after \d+ h.* \(at 20\d\d-/);
  });

  it("stops waiting as soon as the signal aborts, with the signal's reason", async () => {
    const deadline = deadlineSignal(50, () => new TimeoutError('step over'));
    const t0 = Date.now();
    const err = await retry(
      async () => {
        throw temporary();
      },
      { ...policy, maxAttempts: 100, baseDelayMs: 1000, maxDelayMs: 1000 },
      { signal: deadline.signal },
    ).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(900);
    expect(err).toBeInstanceOf(TimeoutError);
    deadline.clear();
    const aborted = new AbortController();
    aborted.abort();
    await expect(sleep(10_000, aborted.signal)).rejects.toBeInstanceOf(AbortedError);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('the error model', () => {
  it('one isTemporary and one errorCode for everything; unknown errors are not temporary, coded INTERNAL', () => {
    expect(isTemporary(new OciImportError('INVALID_REQUEST', 'x'))).toBe(false);
    expect(isTemporary(temporary())).toBe(true);
    expect(isTemporary(new TypeError('bug'))).toBe(false);
    expect(errorCode(new TypeError('bug'))).toBe('INTERNAL');
    expect(errorCode(new RegistryError('GET', 'u', 404, [{ code: 'MANIFEST_UNKNOWN', message: 'm' }]))).toBe(
      'MANIFEST_UNKNOWN',
    );
    expect(new RegistryError('GET', 'u', 503, []).temporary).toBe(true);
    expect(new RegistryError('GET', 'u', 503, [], { side: 'source' }).side).toBe('source');
  });
});

describe('only errors known temporary are retried', () => {
  it('a TypeError thrown inside a retried operation is attempted once', async () => {
    let calls = 0;
    const err = await retry(async () => {
      calls++;
      throw new TypeError('x is not a function');
    }, policy).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
  });

  it('a socket reset, anywhere in the cause chain, is known temporary; an SDK error with a 503 too; others not', async () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(isTemporary(reset)).toBe(true);
    expect(isTemporary(new TypeError('fetch failed', { cause: reset }))).toBe(true);
    expect(isTemporary(Object.assign(new Error('server busy'), { statusCode: 503 }))).toBe(true);
    expect(isTemporary(Object.assign(new Error('conflict'), { statusCode: 409 }))).toBe(false);
    expect(isTemporary(Object.assign(new Error('bad cert'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe(false);
    let calls = 0;
    await expect(
      retry(async () => {
        if (++calls < 3) throw reset;
        return 'ok';
      }, policy),
    ).resolves.toBe('ok');
    expect(calls).toBe(3);
  });

  it('a connection failure is wrapped as temporary only when its kind is known to be', () => {
    const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    expect(new TransportError('GET', 'u', reset)).toMatchObject({ temporary: true, code: 'CONNECTION_FAILED' });
    expect(
      new TransportError('GET', 'u', Object.assign(new Error('t'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
    ).toMatchObject({ temporary: true, code: 'TIMEOUT' });
    expect(
      new TransportError('GET', 'u', Object.assign(new Error('invalid header'), { code: 'UND_ERR_INVALID_ARG' }))
        .temporary,
    ).toBe(false);
    expect(new TransportError('GET', 'u', new TypeError('bug')).temporary).toBe(false);
  });
});

describe('no nested retries', () => {
  it("what a loop's attempt sends with oneAttempt(policy) is sent once: attempts add up, they do not multiply", async () => {
    let inner = 0;
    let outer = 0;
    const err = await retry(async () => {
      outer++;
      return retry(async () => {
        inner++;
        throw temporary();
      }, oneAttempt(policy));
    }, policy).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_ERROR' });
    expect(outer).toBe(policy.maxAttempts);
    expect(inner).toBe(policy.maxAttempts);
    expect(oneAttempt(policy)).toEqual({ ...policy, maxAttempts: 1 });
  });

  it('work an attempt starts with its own loop retries on its own: no scope is inherited', async () => {
    let inner = 0;
    await retry(async () => {
      await retry(async () => {
        if (++inner < 3) throw temporary();
      }, policy);
    }, policy);
    expect(inner).toBe(3);
  });

  it('a one-attempt loop still honours the signal, and a long Retry-After is RATE_LIMITED, passed on by the outer loop at once', async () => {
    const aborted = new AbortController();
    aborted.abort();
    let ran = 0;
    await expect(
      retry(
        () =>
          retry(
            async () => {
              ran++;
            },
            oneAttempt(policy),
            { signal: aborted.signal },
          ),
        policy,
      ),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(ran).toBe(0);
    let sent = 0;
    const err = await retry(
      () =>
        retry(async () => {
          sent++;
          throw new RegistryError('GET', 'u', 429, [], { retryAfterMs: 999_000 });
        }, oneAttempt(policy)),
      policy,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(sent).toBe(1);
  });
});
