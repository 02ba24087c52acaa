/**
 * A client of a deployed oci-import (`--endpoint https://<app>.azurewebsites.net/api`): the HTTP API of
 * functions/*.ts, with the function key in `x-functions-key` or an Entra ID token in `Authorization: Bearer`. The key
 * (or token) goes to the endpoint's origin only —
 * a status URL or next link on another origin is refused, not followed — and never over plain HTTP except to
 * a loopback host (the local host of `npm start`). Requests that may be repeated safely (GETs, and the POST,
 * which carries a Repeatability-Request-ID) are retried on the statuses and connection failures lib/http-policy.ts
 * calls temporary, by lib/retry.ts.
 */
import { randomUUID } from 'node:crypto';
import { isErrorCode } from '../error-codes.js';
import { OciImportError, TimeoutError } from '../errors.js';
import * as z from 'zod';
import {
  acceptedSchema,
  importListSchema,
  importStatusSchema,
  type AcceptedView,
  type ImportList,
  type ImportStatusView,
} from '../api/status-view.js';
import { CLIENT_ANSWER_MS, isRetryableStatus, isTransientNetworkError, parseRetryAfter } from '../http-policy.js';
import { retry, type RetryPolicy } from '../retry.js';
import { DEFAULT_TIMEOUTS, discard, readAll } from '../oci/body.js';
import { REDIRECT_STATUS, defaultDispatcher } from '../oci/transport.js';
import type { Dispatcher } from 'undici';

export class ApiError extends OciImportError {
  override name = 'ApiError';
  readonly retryAfterMs?: number;
  /** `code` as the service answered it; a code that is not one of ours (another service, a newer version) is kept
   * here, and the error's own code is `HTTP_<status>`. */
  readonly answeredCode: string;
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly body?: Record<string, unknown>,
    o: { temporary?: boolean; retryAfterMs?: number } = {},
  ) {
    super(isErrorCode(code) ? code : `HTTP_${status}`, message, {
      temporary: o.temporary ?? isRetryableStatus(status),
      side: 'request',
    });
    this.answeredCode = code;
    if (o.retryAfterMs !== undefined) this.retryAfterMs = o.retryAfterMs;
  }
}

/** An import's status as the service answers it: the schema of lib/api/status-view.ts. */
export type ImportView = ImportStatusView;

/**
 * What the client accepts: the service's schemas, with fields it does not know yet kept (a newer service may add
 * some; `--json` prints them) rather than refused. A missing or mistyped field is an INVALID_ANSWER.
 */
const ANSWERS = {
  status: importStatusSchema.loose(),
  list: importListSchema.extend({ value: z.array(importStatusSchema.loose()) }).loose(),
  accepted: acceptedSchema.loose(),
};

/** `body` as `schema` has it, or an ApiError naming what the service answered wrongly. */
function check<T>(schema: z.ZodType<T>, answer: Answer<unknown>, what: string): Answer<T> {
  const parsed = schema.safeParse(answer.body);
  if (parsed.success) return { ...answer, body: parsed.data };
  const issue = parsed.error.issues[0];
  const at = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new ApiError(
    answer.status,
    'INVALID_ANSWER',
    `the answer to ${what} is not an oci-import status (${issue?.message ?? 'invalid'}${at}): is --endpoint an oci-import API?`,
  );
}

/** The status an error answer carries (`import` of a 409 to a cancel), if it is one. */
export function viewIn(body: Record<string, unknown> | undefined): ImportView | undefined {
  const parsed = ANSWERS.status.safeParse(body?.import);
  return parsed.success ? parsed.data : undefined;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** One request on transient failures: 5 attempts, 1 + 2 + 4 + 8 s apart, a `Retry-After` up to 30 s waited. */
const CLIENT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, maxRetryAfterMs: 30_000 };

/** The endpoint as a base URL ending in `/`: https, or http to a loopback host; no query, fragment or user. */
export function endpointUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OciImportError(
      'USAGE',
      `--endpoint "${raw}" is not a URL; expected e.g. https://myapp.azurewebsites.net/api`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new OciImportError(
      'USAGE',
      `--endpoint must be an https URL (plain http only for 127.0.0.1 or localhost): the key and passwords travel with every request`,
    );
  }
  if (url.search || url.hash || url.username || url.password)
    throw new OciImportError(
      'USAGE',
      '--endpoint must be a plain URL, without query, fragment or credentials (the key goes in --key or OCI_IMPORT_KEY)',
    );
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export interface Answer<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: AnswerHeaders;
}

/** An answer's headers, by name (any case); fetch's Headers is one. */
export interface AnswerHeaders {
  get(name: string): string | null;
}

/** What the client reads of an HTTP answer: fetch's Response has it, and so has {@link sendOnce}'s. */
export interface HttpAnswer {
  readonly status: number;
  readonly ok: boolean;
  /** fetch's reason phrase (undici's request gives none) */
  readonly statusText?: string;
  readonly headers: AnswerHeaders;
  text(): Promise<string>;
}

/** One HTTP request as the client sends it; fetch is one (tests give their own). */
export type HttpSend = (
  url: URL,
  init: {
    method: string;
    redirect: 'error';
    signal: AbortSignal;
    headers: Record<string, string>;
    body?: string;
  },
) => Promise<HttpAnswer>;

/** The most of an answer the client reads (a page of the list is a few hundred KB at most); a longer one fails the
 * command as INVALID_ANSWER once that much has come, the connection closed rather than read to its end. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/**
 * One request through the process's keep-alive agent (lib/oci/transport.ts defaultDispatcher(), as the registry
 * clients send: node:http in the CLI's bundle, scripts/build-cli.mjs), not fetch: fetch is Node.js's own copy of
 * undici, loaded and compiled by its first call, 33-42 ms of CPU of every command that talks to the service (measured
 * 2026-12-06). A redirect is refused, as fetch's `redirect: 'error'` does: the key goes to the endpoint's origin only.
 */
export const sendOnce: HttpSend = async (url, init) => {
  const res = await defaultDispatcher().request({
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: init.method as Dispatcher.HttpMethod,
    headers: init.headers,
    body: init.body,
    signal: init.signal,
  });
  if (REDIRECT_STATUS.has(res.statusCode)) {
    await discard(res.body);
    throw new Error(`answered ${res.statusCode}, a redirect the client does not follow`);
  }
  // (not fetch's Headers: that global is Node.js's copy of undici, loaded by its first use)
  const headers: AnswerHeaders = {
    get: (name) => {
      const v = res.headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    },
  };
  return {
    status: res.statusCode,
    ok: res.statusCode >= 200 && res.statusCode < 300,
    headers,
    text: async () => {
      const bytes = await readAll(res.body, MAX_ANSWER_BYTES + 1, DEFAULT_TIMEOUTS, "the service's answer");
      if (bytes.length > MAX_ANSWER_BYTES)
        throw new ApiError(
          res.statusCode,
          'INVALID_ANSWER',
          `${init.method} ${url.origin}${url.pathname} answered more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB: is --endpoint an oci-import API?`,
        );
      return bytes.toString('utf8');
    },
  };
};

export class ImportsClient {
  readonly base: URL;

  /**
   * `auth`: the function key (sent as x-functions-key), or a source of Entra ID bearer tokens (the service's
   * AUTH_MODE=entra; lib/cli/entra-token.ts), or nothing.
   */
  constructor(
    endpoint: string,
    private readonly auth: string | undefined | (() => Promise<string>),
    private readonly http: HttpSend = sendOnce,
    private readonly policy: RetryPolicy = CLIENT_RETRY,
    private readonly answerMs = CLIENT_ANSWER_MS,
  ) {
    this.base = endpointUrl(endpoint);
  }

  private async authHeaders(): Promise<Record<string, string>> {
    if (typeof this.auth === 'function') return { authorization: `Bearer ${await this.auth()}` };
    return this.auth ? { 'x-functions-key': this.auth } : {};
  }

  /** POST imports, repeatable: the same Repeatability-Request-ID on every attempt, so a retry never starts a second import. */
  async create(body: Record<string, unknown>): Promise<Answer<AcceptedView>> {
    const first = new Date().toUTCString();
    const id = randomUUID();
    const answer = await this.send('POST', this.url('imports'), body, {
      'repeatability-request-id': id,
      'repeatability-first-sent': first,
    });
    return check(ANSWERS.accepted, answer, 'the POST');
  }

  async status(idOrUrl: string): Promise<Answer<ImportView>> {
    const answer = await this.send(
      'GET',
      idOrUrl.includes('/') ? this.sameOrigin(idOrUrl) : this.url(`imports/${encodeURIComponent(idOrUrl)}`),
    );
    return check(ANSWERS.status, answer, 'a status request');
  }

  async list(q: { status?: string; limit?: number; next?: string }): Promise<Answer<ImportList>> {
    if (q.next) return check(ANSWERS.list, await this.send('GET', this.sameOrigin(q.next)), 'a listing');
    const url = this.url('imports');
    if (q.status) url.searchParams.set('status', q.status);
    if (q.limit) url.searchParams.set('limit', String(q.limit));
    return check(ANSWERS.list, await this.send('GET', url), 'a listing');
  }

  async cancel(id: string): Promise<Answer<ImportView>> {
    return check(
      ANSWERS.status,
      await this.send('POST', this.url(`imports/${encodeURIComponent(id)}/cancel`)),
      'the cancel',
    );
  }

  private url(path: string): URL {
    return new URL(path, this.base);
  }

  /** A URL the service returned, followed only on the endpoint's own origin (the key must not leave it). */
  private sameOrigin(raw: string): URL {
    const url = new URL(raw, this.base);
    if (url.origin !== this.base.origin)
      throw new ApiError(
        0,
        'CROSS_ORIGIN_URL',
        `the service answered with a URL on another origin (${url.origin}); not sending the key there`,
      );
    return url;
  }

  private async send(
    method: string,
    url: URL,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer<unknown>> {
    return retry(async () => {
      const auth = await this.authHeaders();
      const deadline = AbortSignal.timeout(this.answerMs);
      try {
        const res = await this.http(url, {
          method,
          redirect: 'error',
          signal: deadline,
          headers: {
            accept: 'application/json',
            ...auth,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return await this.answer(method, url, res);
      } catch (err) {
        if (err instanceof OciImportError) throw err;
        if (deadline.aborted)
          throw new TimeoutError(
            `${method} ${url.origin}${url.pathname} had no complete answer within ${Math.round(this.answerMs / 1000)} s`,
            { side: 'request' },
          );
        const cause = (err as { cause?: Error }).cause;
        throw new ApiError(
          0,
          'UNREACHABLE',
          `${method} ${url.origin}${url.pathname} failed: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`,
          undefined,
          { temporary: isTransientNetworkError(err) },
        );
      }
    }, this.policy);
  }

  private async answer(method: string, url: URL, res: HttpAnswer): Promise<Answer<unknown>> {
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok) return { status: res.status, body: parsed, headers: res.headers };
    // the retryable statuses are worth another attempt (lib/http-policy.ts), except the service's own 503 with a code
    // and no Retry-After: it means to keep refusing (TARGET_REGISTRY_NOT_SET …)
    const retryAfter = res.headers.get('retry-after') ?? undefined;
    const kept = res.status === 503 && !retryAfter && Boolean(res.headers.get('x-ms-error-code'));
    const o = { temporary: isRetryableStatus(res.status) && !kept, retryAfterMs: parseRetryAfter(retryAfter) };
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (error?.code)
      throw new ApiError(res.status, error.code, error.message ?? error.code, parsed as Record<string, unknown>, o);
    const hint =
      res.status === 401
        ? typeof this.auth === 'function'
          ? ": the Entra ID token was refused (is --scope the service's application ID URI with /.default?)"
          : ': the key was refused or missing (--key, or OCI_IMPORT_KEY; a service with AUTH_MODE=entra takes --scope)'
        : res.status === 404
          ? ': is --endpoint the API base (…/api)?'
          : '';
    throw new ApiError(
      res.status,
      `HTTP_${res.status}`,
      `${method} ${url.origin}${url.pathname} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${hint}`,
      undefined,
      o,
    );
  }
}
