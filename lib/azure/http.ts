/**
 * The few plain HTTP calls of the Azure paths (ACR's /oauth2 endpoints, one ARM GET): undici on the
 * shared keep-alive agent, retried on 429/5xx and broken connections like registry requests are.
 * Request bodies carry tokens: nothing here logs or repeats a request in an error.
 */
import { request, type Dispatcher } from 'undici';
import { TransportError, redactUrl } from '../oci/errors.js';
import { DEFAULT_RETRY, RETRYABLE_STATUS, backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from '../oci/retry.js';
import { USER_AGENT, defaultDispatcher, readText } from '../oci/transport.js';

export interface HttpOptions {
  readonly dispatcher?: Dispatcher;
  readonly retry?: RetryPolicy;
  readonly userAgent?: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Answers are small JSON documents; anything longer is cut (and then fails to parse). */
const MAX_ANSWER = 256 * 1024;

async function call(method: 'GET' | 'POST', url: URL, headers: Record<string, string>, body: string | undefined, o: HttpOptions): Promise<HttpAnswer> {
  const policy = o.retry ?? DEFAULT_RETRY;
  for (let attempt = 1; ; attempt++) {
    let status: number;
    let text: string;
    let retryAfter: string | string[] | undefined;
    try {
      const res = await request(url, {
        method,
        headers: { 'user-agent': o.userAgent ?? USER_AGENT, accept: 'application/json', ...headers },
        body,
        dispatcher: o.dispatcher ?? defaultDispatcher(),
      });
      status = res.statusCode;
      retryAfter = res.headers['retry-after'];
      text = await readText(res.body, MAX_ANSWER);
    } catch (err) {
      if (attempt < policy.maxAttempts) {
        await sleep(backoffDelay(policy, attempt));
        continue;
      }
      throw new TransportError(method, redactUrl(url), err);
    }
    if (RETRYABLE_STATUS.has(status) && attempt < policy.maxAttempts) {
      await sleep(backoffDelay(policy, attempt, parseRetryAfter(retryAfter)));
      continue;
    }
    return { status, body: text };
  }
}

/** POST `application/x-www-form-urlencoded`; a field given as an array is sent once per value. */
export function postForm(url: URL, fields: Record<string, string | readonly string[] | undefined>, o: HttpOptions = {}): Promise<HttpAnswer> {
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
