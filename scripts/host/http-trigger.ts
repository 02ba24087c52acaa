/**
 * HTTP triggers: a node:http server on loopback in front of the worker process, with the Functions
 * host's request pipeline (Azure/azure-functions-host, paths in that repository):
 *
 * 1. Local-only guard (no Azure counterpart; a developer's host must not be driven by a web page): the
 *    `Host` header must name this listener (127.0.0.1, localhost or [::1] with its port) — DNS
 *    rebinding — and a browser `Origin`, when sent, must be this host's own origin; else 403.
 * 2. Routing: `/<routePrefix>/<route>`; the HTTP methods are a route constraint
 *    (`WebScriptHostHttpRoutesManager` adds `HttpMethodRouteConstraint`), so a wrong method matches no
 *    route and is a 404, not a 405.
 * 3. Keys (when LOCAL_HOST_FUNCTION_KEY is set): `authLevel: function` needs the function key (or the
 *    master key), `admin` the master key, from the `x-functions-key` header, else the `code` query
 *    parameter (`Security/Authentication/Keys/AuthenticationLevelHandler.cs`); without it an empty 401
 *    (`Middleware/FunctionInvocationMiddleware.cs` returns `UnauthorizedResult`).
 * 4. Body: over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (default 100 MB, `ScriptConstants.DefaultMaxRequestBodySize`,
 *    `Middleware/HttpRequestBodySizeMiddleware.cs`) an empty 413 (Kestrel's answer). A body is passed to
 *    the worker only when the request has a `Content-Length` above 0
 *    (`src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs`:
 *    `if (request.Body != null && request.ContentLength > 0)`): a chunked body reaches the function EMPTY,
 *    a known limitation (azure-functions-host#4926, azure-functions-nodejs-worker#524).
 * 5. The invocation runs in the worker process (worker-channel.ts); a handler error, a timeout or a dead
 *    worker is an empty 500; the library's `HttpResponseInit` / `HttpResponse` is written back.
 * 6. The function's queue output bindings are sent before the answer is written, as part of the invocation: the
 *    WebJobs SDK sends a function's outputs after it returned and before its invocation completes, queue
 *    outputs last ("all other function side-effects are guaranteed to have occurred by the time messages are
 *    enqueued", azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutor.cs,
 *    `ProcessOutputParameters`), and a send that fails fails the invocation ("Error while handling parameter
 *    … after function returned"): the caller gets an empty 500, not the function's answer. A message sent to a
 *    queue this host listens on wakes that listener (outputs.ts).
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FunctionInfo, RpcHttpCookie, RpcHttpData, RpcInvocationResponse, RpcTypedData } from './core-api.js';
import type { HostedFunction } from './catalog.js';
import { FunctionTimeoutError, WorkerExitError, type InFlight, type Invoker } from './invoke.js';
import { describeError, type HostLogger } from './log.js';
import { deliverOutputs, type OutputDeps } from './outputs.js';
import { compareRoutes, compileRoute, matchRoute, type CompiledRoute } from './route.js';

export interface HttpFunction {
  readonly fn: FunctionInfo;
  /** The function as the catalog has it: its queue outputs are sent after it succeeds. */
  readonly hosted: HostedFunction;
  readonly route: CompiledRoute;
  readonly methods: ReadonlySet<string>;
  readonly authLevel: string;
}

export interface HttpKeys {
  /** Accepted for `authLevel: function`. */
  readonly functionKey?: string;
  /** Accepted for `function` and `admin`. */
  readonly masterKey?: string;
}

export interface HttpHostOptions {
  readonly invoke: Invoker;
  readonly functions: readonly HttpFunction[];
  readonly routePrefix: string;
  /** FUNCTIONS_REQUEST_BODY_SIZE_LIMIT. */
  readonly maxBodyBytes: number;
  readonly functionTimeoutMs: number | null;
  readonly logger: HostLogger;
  readonly inFlight: InFlight;
  /** Keys are demanded only when at least one is set. */
  readonly keys?: HttpKeys;
  /** Extra fields of GET /admin/host/status (e.g. the worker's pid). */
  readonly status?: () => Record<string, unknown>;
  /** Where a successful invocation's queue outputs go (outputs.ts), as for the queue and timer triggers. */
  readonly outputs: OutputDeps;
}

/** Builds the route table entry of an http-triggered function from its %resolved% trigger binding. */
export function toHttpFunction(hosted: HostedFunction): HttpFunction {
  const { fn, trigger } = hosted;
  const route = typeof trigger.route === 'string' && trigger.route.trim() !== '' ? trigger.route : fn.name;
  const methodsRaw = Array.isArray(trigger.methods) && trigger.methods.length > 0 ? trigger.methods : ['GET', 'POST'];
  const methods = new Set(methodsRaw.map((m) => String(m).toUpperCase()));
  return {
    fn,
    hosted,
    route: compileRoute(route),
    methods,
    authLevel: typeof trigger.authLevel === 'string' ? trigger.authLevel.toLowerCase() : 'anonymous',
  };
}

/** The `Host` values this listener answers to (loopback names with its port; no port only on port 80). */
export function allowedHosts(port: number): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  const hosts = new Set(names.map((n) => `${n}:${port}`));
  if (port === 80) names.forEach((n) => hosts.add(n));
  return hosts;
}

/** The origins of pages this host serves itself. */
export function allowedOrigins(port: number): Set<string> {
  return new Set(['127.0.0.1', 'localhost', '[::1]'].map((n) => (port === 80 ? `http://${n}` : `http://${n}:${port}`)));
}

/** Why a request may not reach any handler (foreign Host or Origin), or undefined when it may. */
export function refuseForeign(headers: IncomingMessage['headers'], port: number): string | undefined {
  const host = headers.host?.toLowerCase();
  if (!host || !allowedHosts(port).has(host))
    return 'Host header is not this local host (127.0.0.1, localhost or [::1] with its port)';
  const origin = headers.origin;
  if (origin !== undefined && !allowedOrigins(port).has(origin.toLowerCase())) return 'Origin is not this local host';
  return undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function sameKey(given: string, expected: string | undefined): boolean {
  return expected !== undefined && expected !== '' && timingSafeEqual(digest(given), digest(expected));
}

/**
 * The authorization level a request proves (AuthenticationLevelHandler: the header wins over `code`),
 * and whether it may call a function of `authLevel`.
 */
export function authorized(
  authLevel: string,
  headerKey: string | undefined,
  queryKey: string | null,
  keys: HttpKeys | undefined,
): boolean {
  if (!keys || (!keys.functionKey && !keys.masterKey)) return true;
  if (authLevel === 'anonymous') return true;
  const given = headerKey !== undefined ? headerKey : (queryKey ?? '');
  if (given === '') return false;
  if (sameKey(given, keys.masterKey)) return true;
  return authLevel === 'function' && sameKey(given, keys.functionKey);
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);

function typedDataToBuffer(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
  if (data.stream) return Buffer.from(data.stream);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  if (typeof data.int === 'number') return Buffer.from(String(data.int));
  if (typeof data.double === 'number') return Buffer.from(String(data.double));
  return Buffer.alloc(0);
}

/** RFC 6265 Set-Cookie serialization of an RPC cookie. */
export function serializeCookie(c: RpcHttpCookie): string {
  let out = `${c.name ?? ''}=${c.value ?? ''}`;
  if (c.domain?.value) out += `; Domain=${c.domain.value}`;
  if (c.path?.value) out += `; Path=${c.path.value}`;
  const exp = c.expires?.value;
  if (exp && exp.seconds !== undefined && exp.seconds !== null) {
    out += `; Expires=${new Date(Number(exp.seconds) * 1000 + Math.floor((exp.nanos ?? 0) / 1e6)).toUTCString()}`;
  }
  if (c.maxAge?.value !== undefined && c.maxAge.value !== null) out += `; Max-Age=${Math.floor(c.maxAge.value)}`;
  if (c.secure?.value) out += '; Secure';
  if (c.httpOnly?.value) out += '; HttpOnly';
  switch (c.sameSite) {
    case 'lax':
      out += '; SameSite=Lax';
      break;
    case 'strict':
      out += '; SameSite=Strict';
      break;
    case 'explicitNone':
      out += '; SameSite=None';
      break;
    default:
      break;
  }
  return out;
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

type BodyResult = { ok: true; body: Buffer } | { ok: false };

function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve({ ok: false });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      total += chunk.length;
      if (total > limit) {
        done = true;
        req.pause();
        resolve({ ok: false });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve({ ok: true, body: Buffer.concat(chunks) });
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
}

function plain(res: ServerResponse, status: number, text = '', extra: Record<string, string | string[]> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    ...(text ? { 'content-type': 'text/plain; charset=utf-8' } : {}),
    'content-length': String(body.length),
    ...extra,
  });
  res.end(body);
}

function httpResponseOf(response: RpcInvocationResponse): RpcHttpData | undefined {
  const ret = response.returnValue;
  if (ret && ret.http) return ret.http;
  for (const out of response.outputData ?? []) {
    if (out.data?.http) return out.data.http;
  }
  return undefined;
}

/** A request as the stages below see it. */
interface Incoming {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly started: number;
  readonly method: string;
  readonly rawUrl: string;
  /** The path, undecoded, without the query. */
  readonly rawPath: string;
  /** The query string after `?` ('' without one). */
  readonly query: string;
  readonly parts: readonly string[];
}

/** What the stages share: the options, the route prefix's segments, the route table and the port listened on. */
interface HostContext {
  readonly options: HttpHostOptions;
  readonly prefixParts: readonly string[];
  /** Most specific first; registration order breaks ties. */
  readonly table: readonly HttpFunction[];
  port(): number;
}

interface Chosen {
  readonly f: HttpFunction;
  readonly params: Record<string, string>;
}

function incoming(req: IncomingMessage, res: ServerResponse): Incoming {
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  return {
    req,
    res,
    started: performance.now(),
    method: (req.method ?? 'GET').toUpperCase(),
    rawUrl,
    rawPath,
    query: q >= 0 ? rawUrl.slice(q + 1) : '',
    parts: rawPath.split('/').filter((p) => p !== ''),
  };
}

/**
 * 1. Before anything else: only this machine's own clients, never a web page elsewhere (403); then what the host
 * answers itself (its status, its root page). True when the request was answered.
 */
function answeredByHost(r: Incoming, c: HostContext): boolean {
  const { req, res, method, rawPath } = r;
  const foreign = refuseForeign(req.headers, c.port());
  if (foreign) {
    req.resume();
    plain(res, 403, `Forbidden: ${foreign}.\n`);
    c.options.logger.warn('http', `${method} ${rawPath} -> 403 (${foreign})`);
    return true;
  }
  const read = method === 'GET' || method === 'HEAD';
  if (read && rawPath === '/admin/host/status') {
    req.resume();
    const body = JSON.stringify({
      state: 'Running',
      version: '4.x (oci-import local host)',
      functions: c.options.functions.length,
      ...c.options.status?.(),
    });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(method === 'HEAD' ? undefined : body);
    return true;
  }
  if (read && rawPath === '/' && c.prefixParts.length > 0) {
    req.resume();
    plain(res, 200, method === 'HEAD' ? '' : 'oci-import local Functions host is running.\n');
    return true;
  }
  return false;
}

/** 2. The function whose route and method match, under the route prefix; a 404 (answered here) otherwise. */
function route(r: Incoming, c: HostContext): Chosen | undefined {
  const { req, res, method, rawPath, parts } = r;
  const underPrefix =
    parts.length >= c.prefixParts.length &&
    c.prefixParts.every((p, i) => {
      try {
        return decodeURIComponent(parts[i]!).toLowerCase() === p;
      } catch {
        return false;
      }
    });
  if (!underPrefix) {
    req.resume();
    plain(res, 404);
    c.options.logger.info('http', `${method} ${rawPath} -> 404 (not under /${c.options.routePrefix})`);
    return undefined;
  }
  const relative = parts.slice(c.prefixParts.length).join('/');
  // A wrong method is no match (404), as in Azure.
  for (const f of c.table) {
    if (!f.methods.has(method)) continue;
    const params = matchRoute(f.route, relative);
    if (params) return { f, params };
  }
  req.resume();
  plain(res, 404);
  c.options.logger.info('http', `${method} ${rawPath} -> 404 (no route for this method and path)`);
  return undefined;
}

/** 3. The function's authLevel: a key in `x-functions-key` or `?code=`; an empty 401 (answered here) otherwise. */
function keyAccepted(r: Incoming, chosen: Chosen, c: HostContext): boolean {
  const headerKey = r.req.headers['x-functions-key'];
  const queryKey = new URLSearchParams(r.query).get('code');
  if (authorized(chosen.f.authLevel, Array.isArray(headerKey) ? headerKey[0] : headerKey, queryKey, c.options.keys))
    return true;
  r.req.resume();
  plain(r.res, 401);
  c.options.logger.info(
    'http',
    `${r.method} ${r.rawPath} -> 401 Functions.${chosen.f.fn.name} (authLevel ${chosen.f.authLevel}: no valid key)`,
  );
  return false;
}

/** 4. The body: a Content-Length is needed for the function to see it. Undefined: over the cap, 413 answered here. */
async function requestBody(r: Incoming, c: HostContext): Promise<Buffer | undefined> {
  const { req, res, method, rawPath } = r;
  if (req.headers['content-length'] === undefined) {
    req.resume(); // chunked or none: discarded, as in Azure
    if (req.headers['transfer-encoding'])
      c.options.logger.warn(
        'http',
        `${method} ${rawPath}: a body without Content-Length (Transfer-Encoding: ${req.headers['transfer-encoding']}) reaches the function empty, as in Azure`,
      );
    return Buffer.alloc(0);
  }
  const result = await readBody(req, c.options.maxBodyBytes);
  if (result.ok) return result.body;
  res.once('finish', () => req.destroy());
  plain(res, 413, '', { connection: 'close' });
  c.options.logger.warn(
    'http',
    `${method} ${rawPath} -> 413 (body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT ${c.options.maxBodyBytes} bytes)`,
  );
  return undefined;
}

/** The function's HTTP answer as the client gets it: hop-by-hop headers dropped, cookies serialized. Returns its status. */
function writeAnswer(res: ServerResponse, method: string, out: RpcHttpData | undefined): number {
  if (!out) {
    plain(res, 204);
    return 204;
  }
  const status = Number(out.statusCode ?? '200');
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new Error(`the function returned an invalid HTTP status '${String(out.statusCode)}'`);
  }
  const payload = typedDataToBuffer(out.body);
  const headers: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(out.headers ?? {})) {
    if (HOP_BY_HOP.has(key.toLowerCase())) continue;
    headers[key.toLowerCase()] = String(value);
  }
  const cookies = (out.cookies ?? []).map(serializeCookie);
  if (cookies.length > 0) {
    const existing = headers['set-cookie'];
    headers['set-cookie'] = [...(existing === undefined ? [] : [existing].flat()), ...cookies];
  }
  const noBody = status === 204 || status === 304 || method === 'HEAD';
  if (status !== 204 && status !== 304) headers['content-length'] = String(payload.length);
  res.writeHead(status, headers);
  res.end(noBody ? undefined : payload);
  return status;
}

/** 5. The invocation, in the worker process, and its answer (an empty 500 on any failure: no stack goes back). */
async function invoke(r: Incoming, chosen: Chosen, body: Buffer, c: HostContext): Promise<void> {
  const { fn } = chosen.f;
  const { options } = c;
  const http: RpcHttpData = {
    method: r.method,
    url: `http://${r.req.headers.host!}${r.rawUrl}`,
    headers: flatHeaders(r.req),
    params: chosen.params,
    ...(body.length > 0 ? { body: { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } } : {}),
  };
  const invocationId = randomUUID();
  let status = 500;
  try {
    const result = await options.inFlight.track(
      (async () => {
        const invoked = await options.invoke(fn.name, { trigger: { http }, invocationId }, options.functionTimeoutMs);
        await deliverOutputs(chosen.f.hosted, invoked.response, options.outputs);
        return invoked;
      })(),
    );
    status = writeAnswer(r.res, r.method, httpResponseOf(result.response));
  } catch (err) {
    status = 500;
    if (err instanceof FunctionTimeoutError || err instanceof WorkerExitError)
      options.logger.error(fn.name, `${err.message} (Id=${invocationId})`);
    else
      options.logger.error(
        fn.name,
        `Exception while executing function: Functions.${fn.name}: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`,
      );
    // No stack, message or secret goes back to the caller (as in Azure: an empty 500).
    plain(r.res, 500);
  }
  const ms = Math.round(performance.now() - r.started);
  options.logger.info(
    'http',
    `${r.method} ${r.rawPath} -> ${status} Functions.${fn.name} (Id=${invocationId}, Duration=${ms}ms)`,
  );
}

/** One request through the stages, each of which may answer it and end there. */
async function handle(r: Incoming, c: HostContext): Promise<void> {
  if (answeredByHost(r, c)) return;
  const chosen = route(r, c);
  if (!chosen || !keyAccepted(r, chosen, c)) return;
  const body = await requestBody(r, c);
  if (body === undefined) return;
  await invoke(r, chosen, body, c);
}

export function createHttpHost(options: HttpHostOptions): Server {
  const { routePrefix, logger } = options;
  const context: HostContext = {
    options,
    prefixParts: routePrefix === '' ? [] : routePrefix.split('/').map((p) => p.toLowerCase()),
    table: [...options.functions].sort((a, b) => compareRoutes(a.route, b.route)),
    port: () => (server.address() as AddressInfo | null)?.port ?? 0,
  };
  const server = createServer((req, res) => {
    void handle(incoming(req, res), context).catch((err: unknown) => {
      logger.error('http', `request handling failed: ${describeError(err)}`);
      plain(res, 500);
    });
  });
  return server;
}
