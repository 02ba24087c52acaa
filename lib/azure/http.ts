/**
 * The few plain HTTP calls of the Azure paths (a registry's `GET /v2/` probe and /oauth2 endpoints, one ARM
 * GET): undici on the caller's dispatcher — a source registry's is the address-guarded one of every other source
 * request (lib/policy/sources.ts), so a name that resolves to an internal address gets no token — under the same
 * deadlines as registry requests (no answer headers or body byte for `idleMs`, bodies at the minimum rate, the
 * caller's signal), retried on 429/5xx and broken connections like registry requests are.
 * Request bodies carry tokens: nothing here logs or repeats a request in an error.
 */
import type { Dispatcher } from 'undici';
import { DEFAULT_TIMEOUTS, readText, type Timeouts } from '../oci/body.js';
import { RegistryError, redactUrl, transportFailure } from '../oci/errors.js';
import { USER_AGENT, defaultDispatcher } from '../oci/transport.js';
import { isRetryableStatus, parseRetryAfter } from '../http-policy.js';
import { DEFAULT_RETRY, abortReason, retry, type RetryPolicy } from '../retry.js';

export interface HttpOptions {
  /** Where connections go: a source's guarded dispatcher, else the shared keep-alive agent (operator-set endpoints). */
  readonly dispatcher?: Dispatcher;
  /** Request deadlines (REQUEST_TIMEOUT_SECONDS, MIN_BYTES_PER_SECOND). @default DEFAULT_TIMEOUTS */
  readonly timeouts?: Timeouts;
  readonly retry?: RetryPolicy;
  readonly userAgent?: string;
  readonly signal?: AbortSignal;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** Answers are small JSON documents; anything longer is cut (and then fails to parse). */
const MAX_ANSWER = 256 * 1024;

/** A retryable answer that stayed so: handed back to the caller as an answer, not as an error. */
class RetryableAnswer extends RegistryError {
  constructor(
    method: string,
    url: URL,
    readonly answer: HttpAnswer,
    retryAfterMs: number | undefined,
  ) {
    super(method, redactUrl(url), answer.status, [], { retryAfterMs });
  }
}

/** One call, retried on 429/5xx and broken connections; a retryable answer that stays so is returned as it is. */
export async function call(
  method: 'GET' | 'POST',
  url: URL,
  headers: Record<string, string>,
  body: string | undefined,
  o: HttpOptions,
): Promise<HttpAnswer> {
  try {
    return await retry(
      async () => {
        let answer: HttpAnswer;
        let retryAfter: string | string[] | undefined;
        const timeouts = o.timeouts ?? DEFAULT_TIMEOUTS;
        try {
          const res = await (o.dispatcher ?? defaultDispatcher()).request({
            origin: url.origin,
            path: `${url.pathname}${url.search}`,
            method,
            headers: { 'user-agent': o.userAgent ?? USER_AGENT, accept: 'application/json', ...headers },
            body,
            headersTimeout: timeouts.idleMs,
            bodyTimeout: timeouts.idleMs,
            signal: o.signal,
          });
          retryAfter = res.headers['retry-after'];
          answer = {
            status: res.statusCode,
            body: await readText(res.body, MAX_ANSWER, timeouts, `${method} ${redactUrl(url)}`),
            headers: res.headers,
          };
        } catch (err) {
          if (o.signal?.aborted) throw abortReason(o.signal);
          throw transportFailure(method, url, err);
        }
        if (isRetryableStatus(answer.status))
          throw new RetryableAnswer(method, url, answer, parseRetryAfter(retryAfter));
        return answer;
      },
      o.retry ?? DEFAULT_RETRY,
      { signal: o.signal },
    );
  } catch (err) {
    // The caller words 429/5xx answers itself (with the endpoint's error body).
    if (err instanceof RetryableAnswer) return err.answer;
    throw err;
  }
}

/** POST `application/x-www-form-urlencoded`; a field given as an array is sent once per value. */
export function postForm(
  url: URL,
  fields: Record<string, string | readonly string[] | undefined>,
  o: HttpOptions = {},
): Promise<HttpAnswer> {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) form.append(name, v);
  }
  return call('POST', url, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), o);
}

/** GET with a bearer token. */
export function getJson(url: URL, bearer: string, o: HttpOptions = {}): Promise<HttpAnswer> {
  return call('GET', url, { authorization: `Bearer ${bearer}` }, undefined, o);
}
