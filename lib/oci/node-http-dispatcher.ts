/**
 * The one call of undici's API the clients make (`dispatcher.request()`: lib/oci/transport.ts, lib/azure/http.ts,
 * lib/cli/client.ts), sent through Node.js's own HTTP/1.1 client (node:http, node:https) instead: what the CLI's
 * bundle carries in undici's place (scripts/build-cli.mjs). The service keeps undici, whose connector the sources
 * guard needs (lib/policy/sources.ts); a command that starts, copies a small image and exits pays less for Node.js's
 * client, whose parser is native and whose modules come with Node.js's code cache: the CLI's bundle is half the size
 * without undici, and a small copy 6-11 ms faster (docs/benchmarks.md).
 *
 * The same contract as undici's `Agent.request()` for what the clients use (test/unit/oci/node-http-dispatcher.test.ts
 * runs both through the same cases):
 * - keep-alive connections per origin, up to `connections` at once, an idle one closed after `keepAliveTimeout` (an
 *   answer without Content-Length or chunked framing ends its connection, a HEAD's too: registries frame theirs);
 * - `headersTimeout`: no answer headers for that long, while the request is not busy sending its body, fails the
 *   request; `bodyTimeout`: no body byte for that long, while the reader is not the one holding the body back, ends
 *   the body. Both as `ETIMEDOUT` (a temporary failure, reported as TIMEOUT: lib/http-policy.ts);
 * - `maxHeaderSize` bounds an answer's headers; a body is a Buffer, a string or an async iterable of chunks written
 *   one at a time as the connection takes them (a failing iterable fails the request with its error);
 * - the answer's headers in lowercase, a repeated one as an array; its body a stream that `for await` reads,
 *   `destroy()` drops with its connection and `dump({ limit })` discards (the connection kept up to `limit` bytes);
 * - `signal` aborts the request and, once answered, its body, with the signal's reason.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type * as Https from 'node:https';

export interface NodeHttpDispatcherOptions {
  readonly keepAliveTimeout?: number;
  readonly connections?: number;
  readonly maxHeaderSize?: number;
}

export interface NodeHttpRequest {
  readonly origin: string | URL;
  readonly path: string;
  readonly method: string;
  readonly headers?: Record<string, string> | null;
  readonly body?: Buffer | Uint8Array | string | AsyncIterable<Uint8Array | string> | null;
  readonly headersTimeout?: number | null;
  readonly bodyTimeout?: number | null;
  /** undici's option to keep a connection after a HEAD; Node.js's client keeps it anyway. */
  readonly reset?: boolean;
  readonly signal?: AbortSignal | null;
}

/** An answer's body: what undici's body gives the clients. */
export interface NodeHttpBody extends AsyncIterable<Buffer> {
  destroy(err?: Error): unknown;
  dump(options?: { limit?: number }): Promise<void>;
}

export interface NodeHttpAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: NodeHttpBody;
}

/** undici's defaults, where the caller sets no deadline */
const DEFAULT_TIMEOUT_MS = 300_000;

function timeout(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} for ${Math.round(ms / 1000)} s`), { code: 'ETIMEDOUT' });
}

export class NodeHttpDispatcher {
  private readonly agentOptions: Https.AgentOptions;
  private readonly http: HttpAgent;
  /** node:https, and TLS with it, loaded by the first https request (a plain-http run never loads them) */
  private https?: Promise<{ request: typeof Https.request; agent: Https.Agent }>;
  private httpsAgent?: Https.Agent;

  constructor(private readonly options: NodeHttpDispatcherOptions = {}) {
    this.agentOptions = {
      keepAlive: true,
      maxSockets: options.connections ?? Infinity,
      // an idle connection in the pool is closed after this long (a busy one has its request's deadlines instead)
      timeout: options.keepAliveTimeout ?? 4_000,
      scheduling: 'lifo',
    };
    this.http = new HttpAgent(this.agentOptions);
  }

  async request(o: NodeHttpRequest): Promise<NodeHttpAnswer> {
    const origin = typeof o.origin === 'string' ? new URL(o.origin) : o.origin;
    if (origin.protocol === 'https:') {
      this.https ??= import('node:https').then((https) => {
        this.httpsAgent = new https.Agent(this.agentOptions);
        return { request: https.request, agent: this.httpsAgent };
      });
      const { request, agent } = await this.https;
      return this.send(o, origin, request, agent);
    }
    if (origin.protocol !== 'http:') throw new TypeError(`${origin.protocol} is not an HTTP origin`);
    return this.send(o, origin, httpRequest, this.http);
  }

  /** Sends one request once its protocol's module is loaded (node:https by the first https request). */
  protected send(
    o: NodeHttpRequest,
    origin: URL,
    request: typeof httpRequest,
    agent: HttpAgent,
  ): Promise<NodeHttpAnswer> {
    const signal = o.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const headersTimeout = o.headersTimeout ?? DEFAULT_TIMEOUT_MS;
    const bodyTimeout = o.bodyTimeout ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const req = request({
        protocol: origin.protocol,
        // (an IPv6 address without its brackets)
        hostname: origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname,
        port: origin.port,
        path: o.path,
        method: o.method,
        headers: o.headers ?? {},
        agent,
        ...(this.options.maxHeaderSize ? { maxHeaderSize: this.options.maxHeaderSize } : {}),
      });
      let answered: IncomingMessage | undefined;
      const onAbort = (): void => {
        const reason = signal!.reason as Error;
        if (answered) answered.destroy(reason);
        req.destroy(reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      // The socket's idle timer (reads and writes alike): before the answer, a request still sending its body is
      // not timed out unless the connection stopped taking it (undici: the headers timeout waits for the body)
      let sending = false;
      const headersIdle = (): void => {
        if (answered) return;
        if (sending && !req.writableNeedDrain) req.setTimeout(headersTimeout, headersIdle);
        else req.destroy(timeout('no answer headers', headersTimeout));
      };
      req.setTimeout(headersTimeout, headersIdle);
      // (a socket's failure after the answer is the body's: its reader sees it; a later one must not go unheard)
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.once('response', (res) => {
        answered = res;
        // a body nobody reads any more fails silently; a reader sees its failure through the stream it reads
        res.on('error', () => undefined);
        // the body's own idle timer: not while the reader holds it back (its bytes wait, read or not)
        const bodyIdle = (): void => {
          if (res.readableLength > 0) req.setTimeout(bodyTimeout, bodyIdle);
          else res.destroy(timeout('no body byte', bodyTimeout));
        };
        req.setTimeout(bodyTimeout, bodyIdle);
        res.once('close', done);
        resolve({ statusCode: res.statusCode ?? 0, headers: headersOf(res), body: bodyOf(res) });
      });
      const body = o.body;
      if (body === undefined || body === null) req.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
      else {
        sending = true;
        writeAll(req, body).then(
          () => {
            sending = false;
          },
          (err: Error) => req.destroy(err),
        );
      }
    });
  }

  /** Closes every connection, idle or not. */
  async close(): Promise<void> {
    this.http.destroy();
    this.httpsAgent?.destroy();
  }
}

/** Writes an async iterable body one chunk at a time, each after the connection took the last. */
async function writeAll(req: ClientRequest, chunks: AsyncIterable<Uint8Array | string>): Promise<void> {
  for await (const chunk of chunks) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          req.off('drain', go);
          req.off('close', go);
          resolve();
        };
        req.on('drain', go);
        req.on('close', go);
      });
    }
  }
  if (!req.destroyed) req.end();
}

/**
 * The answer's headers as undici gives them: lowercase names, a repeated header as an array of its values (read once
 * from the raw list: Node.js's `headers` joins repeats, its `headersDistinct` makes an array of every header).
 */
function headersOf(res: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

function bodyOf(res: IncomingMessage): NodeHttpBody {
  return Object.assign(res, {
    /** Reads and drops the rest of the body, up to `limit` bytes; past that the connection is closed. */
    dump({ limit = 128 * 1024 }: { limit?: number } = {}): Promise<void> {
      return new Promise<void>((resolve) => {
        if (res.readableEnded || res.destroyed) {
          resolve();
          return;
        }
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > limit) res.destroy();
        });
        res.once('end', () => resolve());
        res.once('close', () => resolve());
        res.once('error', () => resolve());
        res.resume();
      });
    },
  }) as unknown as NodeHttpBody;
}
