/**
 * The one way requests reach a registry: auth → retry → redirects → undici, assembled here.
 *
 * Bodies are always Buffers (chunks are bounded by CHUNK_SIZE), so any request we decide to retry can
 * be replayed exactly. Which requests may be retried is the caller's call (`idempotent`): a PATCH to an
 * upload session never is.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Authenticator } from './auth.js';
import { parseChallenges } from './challenge.js';
import { MAX_ERROR_BODY, RegistryError, TransportError, parseDiagnostics, redactUrl } from './errors.js';
import { DEFAULT_RETRY, RETRYABLE_STATUS, backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from './retry.js';

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
export type Headers = Record<string, string | string[] | undefined>;

/**
 * A body produced while it is sent (an upload fed by source reads): sent once, never replayed. With a
 * `length` it goes with that Content-Length, without one in chunked transfer encoding.
 */
export interface StreamedBody {
  readonly length?: number;
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
  /** Follow 30x redirects (blob GET/HEAD: registries send them to storage or a CDN). */
  readonly followRedirects?: boolean;
}

export interface RegistryResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Dispatcher.ResponseData['body'];
  /** Where the answer finally came from (after redirects). */
  readonly url: URL;
}

export interface TransportOptions {
  readonly authenticator?: Authenticator;
  readonly retry?: RetryPolicy;
  readonly dispatcher?: Dispatcher;
  readonly userAgent?: string;
  /**
   * Vets every URL on another origin than the registry's before it is requested: a redirect target
   * (storage, a CDN) and a token realm. The service refuses non-public addresses there (SSRF guard):
   * a registry it was allowed to read must not make it read the instance metadata endpoint.
   */
  readonly checkUrl?: (url: URL) => Promise<void>;
}

const MAX_REDIRECTS = 5;

/** Keep-alive connections shared by all registry clients of the process. */
let sharedAgent: Agent | undefined;
export function defaultDispatcher(): Agent {
  sharedAgent ??= new Agent({ keepAliveTimeout: 30_000, headersTimeout: 120_000, bodyTimeout: 120_000, connections: 64 });
  return sharedAgent;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export const USER_AGENT = 'oci-import/0.1';

export class Transport {
  private readonly retry: RetryPolicy;
  private readonly dispatcher: Dispatcher;

  constructor(private readonly options: TransportOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.dispatcher = options.dispatcher ?? defaultDispatcher();
  }

  /** Sends with auth, retries and redirects; returns any final status (the caller checks it). */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const idempotent = !isStreamed(req.body) && (req.idempotent ?? (req.method !== 'POST' && req.method !== 'PATCH'));
    const maxAttempts = idempotent ? this.retry.maxAttempts : 1;
    for (let attempt = 1; ; attempt++) {
      let res: RegistryResponse;
      try {
        res = await this.sendAuthorized(req);
      } catch (err) {
        if (err instanceof TransportError && attempt < maxAttempts) {
          await sleep(backoffDelay(this.retry, attempt));
          continue;
        }
        throw err;
      }
      if (RETRYABLE_STATUS.has(res.status) && attempt < maxAttempts) {
        const wait = backoffDelay(this.retry, attempt, parseRetryAfter(res.headers['retry-after']));
        await res.body.dump({ limit: MAX_ERROR_BODY }).catch(() => undefined);
        await sleep(wait);
        continue;
      }
      return res;
    }
  }

  /** Sends and throws a RegistryError unless the status is one of `ok`. */
  async expect(req: RegistryRequest, ...ok: number[]): Promise<RegistryResponse> {
    const res = await this.send(req);
    if (!ok.includes(res.status)) throw await errorFromResponse(req.method, res);
    return res;
  }

  /** A plain GET used by the token flow: no auth layer, same retries. */
  async fetchText(url: URL, authorization: string | undefined): Promise<{ status: number; body: string }> {
    await this.options.checkUrl?.(url);
    for (let attempt = 1; ; attempt++) {
      const res = await this.raw({ method: 'GET', url, scopes: [] }, url, authorization);
      const body = await readText(res.body, 128 * 1024);
      if (RETRYABLE_STATUS.has(res.status) && attempt < this.retry.maxAttempts) {
        await sleep(backoffDelay(this.retry, attempt, parseRetryAfter(res.headers['retry-after'])));
        continue;
      }
      return { status: res.status, body };
    }
  }

  private async sendAuthorized(req: RegistryRequest): Promise<RegistryResponse> {
    const auth = this.options.authenticator;
    let authorization = auth ? await auth.authorize(req.scopes) : undefined;
    let res = await this.follow(req, authorization);
    if (res.status === 401 && auth) {
      const challenges = parseChallenges(res.headers['www-authenticate']);
      const retryWith = await auth.onUnauthorized(challenges, req.scopes);
      if (retryWith && retryWith !== authorization) {
        await res.body.dump({ limit: MAX_ERROR_BODY }).catch(() => undefined);
        // A streamed body is gone: the caller sends it again (with the new token) from what the registry holds.
        if (isStreamed(req.body)) throw new TransportError(req.method, redactUrl(req.url), new Error('the registry asked for new credentials while the body streamed'));
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
      if (!req.followRedirects || ![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      await res.body.dump({ limit: MAX_ERROR_BODY }).catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new TransportError(req.method, redactUrl(req.url), new Error('too many redirects'));
      url = new URL(location, url);
      if (url.origin !== req.url.origin) await this.options.checkUrl?.(url);
    }
  }

  private async raw(req: RegistryRequest, url: URL, authorization: string | undefined): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? USER_AGENT, ...req.headers };
    if (authorization) headers.authorization = authorization;
    const streamed = isStreamed(req.body) ? req.body : undefined;
    if (streamed) {
      if (streamed.length !== undefined) headers['content-length'] = String(streamed.length);
    } else if (req.body !== undefined || ['POST', 'PUT', 'PATCH'].includes(req.method)) {
      headers['content-length'] = String((req.body as Buffer | undefined)?.length ?? 0);
    }
    try {
      const res = await request(url, {
        method: req.method,
        headers,
        // undici writes an async iterable body one item at a time, pulling the next only when the socket
        // took the last (its types omit iterables; its documentation and client-h1 writeIterable have them)
        body: (streamed ? streamed.chunks : req.body) as Buffer | undefined,
        dispatcher: this.dispatcher,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    } catch (err) {
      throw new TransportError(req.method, redactUrl(url), err);
    }
  }
}

export async function readText(body: RegistryResponse['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    if (size + b.length > limit) {
      chunks.push(b.subarray(0, limit - size));
      body.destroy();
      break;
    }
    chunks.push(b);
    size += b.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isStreamed(body: RegistryRequest['body']): body is StreamedBody {
  return body !== undefined && !Buffer.isBuffer(body);
}

/** Builds the RegistryError for an unexpected answer, reading at most 64 KiB of its body. */
export async function errorFromResponse(method: string, res: RegistryResponse): Promise<RegistryError> {
  const text = method === 'HEAD' ? '' : await readText(res.body, MAX_ERROR_BODY).catch(() => '');
  if (method === 'HEAD') await res.body.dump().catch(() => undefined);
  return new RegistryError(method, redactUrl(res.url), res.status, parseDiagnostics(text), text,
    parseRetryAfter(res.headers['retry-after']));
}
