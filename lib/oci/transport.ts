/**
 * The one way requests reach a registry: auth → retry → redirects → undici, assembled here
 * (go-containerregistry `remote/transport`).
 *
 * - Retries: the transport owns them (`retry()` with the client's policy, or the request's own: `oneAttempt` when the
 *   request is sent inside another retry loop's attempt, an upload session or a part, whose loop retries; see
 *   lib/retry.ts), and so for the sign-in a request needs, which runs inside the request's attempt and makes one
 *   attempt itself: one silent token endpoint costs attempts, not attempts × attempts. Only idempotent requests are
 *   sent again; a PATCH to an upload session never is (its
 *   caller asks the registry what arrived). Which statuses and failures are worth it: lib/http-policy.ts. A
 *   retryable status that stays is thrown as a RegistryError.
 * - Deadlines: no answer headers for `idleMs` ends a request, and so does a body that stops (undici's
 *   timeouts) or trickles below the minimum rate (RateWatch, where bodies are read). A request body of
 *   N bytes must be sent within `idleMs + N / minBytesPerSecond`. The caller's `signal` (a step's
 *   deadline, a canceled job) ends everything at once, waits included.
 * - Redirects are followed for blob GET/HEAD only, never from https to plain http, and without the
 *   registry's Authorization on another origin (signed storage URLs carry their own).
 * - Where connections may go is the dispatcher's business: a source's dispatcher checks every address
 *   at connect time (lib/policy/sources.ts), so redirects, token realms and pagination are covered too.
 */
import { Agent, type Dispatcher } from 'undici';
import type { ErrorSide } from '../errors.js';
import { isRetryableStatus, parseRetryAfter } from '../http-policy.js';
import { DEFAULT_RETRY, NO_RETRY, abortReason, deadlineSignal, oneAttempt, retry, type RetryPolicy } from '../retry.js';
import type { Authenticator } from './auth.js';
import { DEFAULT_TIMEOUTS, bodyDeadlineMs, discard, readText, type Body, type Timeouts } from './body.js';
import { parseChallenges } from './challenge.js';
import {
  MAX_ERROR_BODY,
  ProtocolError,
  RegistryError,
  TimeoutError,
  TransportError,
  parseDiagnostics,
  redactUrl,
  transportFailure,
} from './errors.js';

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
export type Headers = Record<string, string | string[] | undefined>;

/**
 * A body produced while it is sent (an upload fed by source reads): sent once, never replayed. With a
 * `length` it goes with that Content-Length, without one in chunked transfer encoding (`expected` then
 * sizes the deadline).
 */
export interface StreamedBody {
  readonly length?: number;
  readonly expected?: number;
  readonly chunks: AsyncIterable<Buffer>;
}

export interface RegistryRequest {
  readonly method: Method;
  readonly url: URL;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | StreamedBody;
  /** Token scopes the request needs, e.g. `repository:library/nginx:pull`. */
  readonly scopes: readonly string[];
  /** May be sent again after a 5xx/429/reset. Default: true for GET, HEAD, PUT, DELETE. */
  readonly idempotent?: boolean;
  /** This request's own retry policy (the part reader owns its parts' attempts). */
  readonly retry?: RetryPolicy;
  /** Follow 30x redirects (blob GET/HEAD: registries send them to storage or a CDN). */
  readonly followRedirects?: boolean;
  readonly signal?: AbortSignal;
}

export interface RegistryResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Body;
  /** Where the answer finally came from (after redirects). */
  readonly url: URL;
}

export interface TransportOptions {
  readonly authenticator?: Authenticator;
  readonly retry?: RetryPolicy;
  readonly dispatcher?: Dispatcher;
  readonly userAgent?: string;
  readonly timeouts?: Timeouts;
  /** Which side this transport serves: stamped on every error. */
  readonly side?: ErrorSide;
}

const MAX_REDIRECTS = 5;
/** The statuses that redirect a request (the Location header says where). */
export const REDIRECT_STATUS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * The headers of one answer, at most (Node.js's default, which undici otherwise reads from node:http: given here,
 * the CLI does not load that module at all, scripts/build-cli.mjs).
 */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Keep-alive connections shared by the clients of the process that need no address guard (targets). */
let sharedAgent: Agent | undefined;
export function defaultDispatcher(): Agent {
  sharedAgent ??= new Agent({ keepAliveTimeout: 30_000, connections: 64, maxHeaderSize: MAX_HEADER_BYTES });
  return sharedAgent;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export const USER_AGENT = 'oci-import/0.1';

export class Transport {
  readonly retry: RetryPolicy;
  readonly timeouts: Timeouts;
  readonly side: ErrorSide | undefined;
  private readonly dispatcher: Dispatcher;

  constructor(private readonly options: TransportOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.dispatcher = options.dispatcher ?? defaultDispatcher();
    this.side = options.side;
  }

  /** Sends with auth, retries and redirects; returns any final status but a retryable one (thrown). */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const idempotent = !isStreamed(req.body) && (req.idempotent ?? (req.method !== 'POST' && req.method !== 'PATCH'));
    const policy = req.retry ?? this.retry;
    return retry(
      async () => {
        const res = await this.sendAuthorized(req);
        if (isRetryableStatus(res.status)) throw await this.errorFrom(req.method, res);
        return res;
      },
      idempotent ? policy : { ...NO_RETRY, maxRetryAfterMs: policy.maxRetryAfterMs },
      { signal: req.signal },
    );
  }

  /** Sends and throws a RegistryError unless the status is one of `ok`. */
  async expect(req: RegistryRequest, ...ok: number[]): Promise<RegistryResponse> {
    const res = await this.send(req);
    if (!ok.includes(res.status)) throw await this.errorFrom(req.method, res);
    return res;
  }

  /**
   * A plain GET used by the token flow: no auth layer, same dispatcher and deadlines, one attempt (the token is
   * fetched inside a request's attempt: that request's loop tries again, the token fetch with it).
   */
  async fetchText(
    url: URL,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: string }> {
    const req: RegistryRequest = { method: 'GET', url, scopes: [], signal };
    return retry(
      async () => {
        const res = await this.follow(req, authorization);
        if (isRetryableStatus(res.status)) throw await this.errorFrom('GET', res);
        return {
          status: res.status,
          body: await this.read(res, () => readText(res.body, 128 * 1024, this.timeouts, `GET ${redactUrl(url)}`)),
        };
      },
      oneAttempt(this.retry),
      { signal },
    );
  }

  /** Builds the RegistryError for an unexpected answer, reading at most 64 KiB of its body. */
  async errorFrom(method: string, res: RegistryResponse): Promise<RegistryError> {
    let text = '';
    if (method === 'HEAD') await discard(res.body);
    else text = await readText(res.body, MAX_ERROR_BODY, this.timeouts).catch(() => '');
    return new RegistryError(method, redactUrl(res.url), res.status, parseDiagnostics(text), {
      side: this.side,
      retryAfterMs: parseRetryAfter(res.headers['retry-after']),
    });
  }

  /** Runs a body read, turning connection failures into our errors (on this transport's side). */
  async read<T>(res: RegistryResponse, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw transportFailure('GET', res.url, err, this.side);
    }
  }

  private async sendAuthorized(req: RegistryRequest): Promise<RegistryResponse> {
    const auth = this.options.authenticator;
    let authorization = auth ? await auth.authorize(req.scopes, req.signal) : undefined;
    let res = await this.follow(req, authorization);
    // Only the registry's own 401 is a challenge to learn from: a redirect target (storage, a CDN, anything a
    // registry points at) must not tell us where to send credentials.
    if (res.status === 401 && auth && res.url.origin === req.url.origin) {
      const challenges = parseChallenges(res.headers['www-authenticate']);
      const retryWith = await auth.onUnauthorized(challenges, req.scopes, req.signal);
      if (retryWith && retryWith !== authorization) {
        await discard(res.body);
        // A streamed body is gone: the caller sends it again (with the new token) from what the registry holds.
        if (isStreamed(req.body))
          throw new TransportError(
            req.method,
            redactUrl(req.url),
            { code: 'REAUTH', message: 'the registry asked for new credentials while the body streamed' },
            { side: this.side, temporary: true },
          );
        authorization = retryWith;
        res = await this.follow(req, authorization);
      }
    }
    return res;
  }

  private async follow(req: RegistryRequest, authorization: string | undefined): Promise<RegistryResponse> {
    let url = req.url;
    for (let hop = 0; ; hop++) {
      // Never send the registry's Authorization to another origin (S3, a CDN): signed URLs carry their own.
      const sameOrigin = url.origin === req.url.origin;
      const res = await this.raw(req, url, sameOrigin ? authorization : undefined);
      const location = header(res.headers, 'location');
      if (!req.followRedirects || !REDIRECT_STATUS.has(res.status) || !location) return res;
      await discard(res.body);
      if (hop >= MAX_REDIRECTS) {
        throw new ProtocolError(
          'TOO_MANY_REDIRECTS',
          `${req.method} ${redactUrl(req.url)} was redirected more than ${MAX_REDIRECTS} times`,
          { side: this.side },
        );
      }
      const next = new URL(location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') {
        throw new ProtocolError(
          'INSECURE_REDIRECT',
          `${req.method} ${redactUrl(url)} redirected to ${redactUrl(next)}: a redirect from https to ${next.protocol.replace(':', '')} is refused`,
          { side: this.side },
        );
      }
      url = next;
    }
  }

  private async raw(req: RegistryRequest, url: URL, authorization: string | undefined): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? USER_AGENT, ...req.headers };
    if (authorization) headers.authorization = authorization;
    const streamed = isStreamed(req.body) ? req.body : undefined;
    let bodyBytes = 0;
    if (streamed) {
      if (streamed.length !== undefined) headers['content-length'] = String(streamed.length);
      bodyBytes = streamed.length ?? streamed.expected ?? 0;
    } else if (req.body !== undefined || ['POST', 'PUT', 'PATCH'].includes(req.method)) {
      bodyBytes = (req.body as Buffer | undefined)?.length ?? 0;
      headers['content-length'] = String(bodyBytes);
    }
    // A request body must be on its way at the minimum rate; the answer's headers then within idleMs.
    const deadline =
      bodyBytes > 0
        ? deadlineSignal(
            bodyDeadlineMs(this.timeouts, bodyBytes),
            () =>
              new TimeoutError(
                `${req.method} ${redactUrl(url)}: the request body of ${bodyBytes} bytes was not sent within ${Math.round(bodyDeadlineMs(this.timeouts, bodyBytes) / 1000)} s (MIN_BYTES_PER_SECOND)`,
                { side: this.side },
              ),
            req.signal,
          )
        : undefined;
    const signal = deadline?.signal ?? req.signal;
    try {
      await freeConnectionsFirst();
      const res = await this.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        // undici writes an async iterable body one item at a time, pulling the next only when the socket
        // took the last (its types omit iterables; its documentation and client-h1 writeIterable have them)
        body: (streamed ? streamed.chunks : req.body) as Buffer | undefined,
        headersTimeout: this.timeouts.idleMs,
        bodyTimeout: this.timeouts.idleMs,
        // undici closes a connection after every HEAD (in case a server sends a body with its answer), which costs
        // a TCP (and TLS) handshake per blob or manifest checked; registries answer HEAD as HTTP says, so it stays
        ...(req.method === 'HEAD' ? { reset: false } : {}),
        signal,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw transportFailure(req.method, url, err, this.side);
    } finally {
      deadline?.clear();
    }
  }
}

/**
 * Wait for the event loop's check phase before a request goes out. undici hands a keep-alive connection whose answer
 * just ended back to its pool only from a `setImmediate` (a full loop turn, for servers that close a connection they
 * said they would keep); a request sent before then, as the next one of a chain is (a HEAD that said 404, then the
 * upload's POST), finds every connection taken and opens a new one: a TCP handshake (and a TLS one) more, and one
 * more connection the registry holds. Queued after undici's, this callback runs once the connection is free again.
 * A small image's copy opened 6 connections without it and 4 with it (the same requests).
 */
function freeConnectionsFirst(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isStreamed(body: RegistryRequest['body']): body is StreamedBody {
  return body !== undefined && !Buffer.isBuffer(body);
}
