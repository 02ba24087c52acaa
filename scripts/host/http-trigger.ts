/**
 * HTTP triggers: a node:http server on loopback that routes `/<routePrefix>/<route>` to the function
 * whose route template matches, checks the method (405 otherwise), builds the RPC http request the
 * Functions host would send (the library turns it into its real `HttpRequest`) and writes back what the
 * library made of the handler's `HttpResponseInit` / `HttpResponse`.
 *
 * authLevel is reported but not enforced, like Core Tools locally (no function keys exist here).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FunctionsRuntime, RegisteredFunction, RpcBindingInfo, RpcHttpCookie, RpcHttpData, RpcInvocationResponse, RpcTypedData } from './core-api.js';
import { FunctionTimeoutError, invoke, type InFlight } from './invoke.js';
import { describeError, type Logger } from './log.js';
import { compareRoutes, compileRoute, matchRoute, type CompiledRoute } from './route.js';

export interface HttpFunction {
  readonly fn: RegisteredFunction;
  readonly route: CompiledRoute;
  readonly methods: ReadonlySet<string>;
  readonly authLevel: string;
}

export interface HttpHostOptions {
  readonly runtime: FunctionsRuntime;
  readonly functions: readonly HttpFunction[];
  readonly routePrefix: string;
  readonly maxBodyBytes: number;
  readonly functionTimeoutMs: number | null;
  readonly logger: Logger;
  readonly inFlight: InFlight;
}

/** Builds the route table entry of an http-triggered function from its %resolved% trigger binding. */
export function toHttpFunction(fn: RegisteredFunction, trigger: RpcBindingInfo = fn.trigger): HttpFunction {
  const route = typeof trigger.route === 'string' && trigger.route.trim() !== '' ? trigger.route : fn.name;
  const methodsRaw = Array.isArray(trigger.methods) && trigger.methods.length > 0 ? trigger.methods : ['GET', 'POST'];
  const methods = new Set(methodsRaw.map((m) => String(m).toUpperCase()));
  return { fn, route: compileRoute(route), methods, authLevel: typeof trigger.authLevel === 'string' ? trigger.authLevel : 'anonymous' };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade', 'content-length']);

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
    case 'lax': out += '; SameSite=Lax'; break;
    case 'strict': out += '; SameSite=Strict'; break;
    case 'explicitNone': out += '; SameSite=None'; break;
    default: break;
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

function validHostHeader(host: string | undefined): host is string {
  return typeof host === 'string' && /^[A-Za-z0-9.\-_]+(?::\d{1,5})?$|^\[[0-9a-fA-F:.]+\](?::\d{1,5})?$/.test(host);
}

export function createHttpHost(options: HttpHostOptions): Server {
  const { runtime, routePrefix, logger } = options;
  const prefixParts = routePrefix === '' ? [] : routePrefix.split('/').map((p) => p.toLowerCase());
  // Most specific first; registration order breaks ties.
  const table = [...options.functions].sort((a, b) => compareRoutes(a.route, b.route));

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      logger.error('http', `request handling failed: ${describeError(err)}`);
      plain(res, 500);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const parts = rawPath.split('/').filter((p) => p !== '');

    if ((method === 'GET' || method === 'HEAD') && rawPath === '/admin/host/status') {
      const body = JSON.stringify({ state: 'Running', version: '4.x (oci-import local host)', functions: runtime.functions.size });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && rawPath === '/' && prefixParts.length > 0) {
      plain(res, 200, method === 'HEAD' ? '' : 'oci-import local Functions host is running.\n');
      return;
    }
    const underPrefix = parts.length >= prefixParts.length && prefixParts.every((p, i) => {
      try {
        return decodeURIComponent(parts[i]!).toLowerCase() === p;
      } catch {
        return false;
      }
    });
    if (!underPrefix) {
      plain(res, 404);
      logger.info('http', `${method} ${rawPath} -> 404 (not under /${routePrefix})`);
      return;
    }
    const relative = parts.slice(prefixParts.length).join('/');

    let allowed: string[] = [];
    let chosen: { f: HttpFunction; params: Record<string, string> } | undefined;
    for (const f of table) {
      const params = matchRoute(f.route, relative);
      if (!params) continue;
      if (f.methods.has(method)) {
        chosen = { f, params };
        break;
      }
      allowed = [...allowed, ...f.methods];
    }
    if (!chosen) {
      if (allowed.length > 0) {
        plain(res, 405, '', { allow: [...new Set(allowed)].join(', ') });
        logger.info('http', `${method} ${rawPath} -> 405 (allowed: ${[...new Set(allowed)].join(', ')})`);
      } else {
        plain(res, 404);
        logger.info('http', `${method} ${rawPath} -> 404 (no route)`);
      }
      return;
    }

    const bodyResult = await readBody(req, options.maxBodyBytes);
    if (!bodyResult.ok) {
      res.once('finish', () => req.destroy());
      plain(res, 413, `Request body larger than the local host limit of ${options.maxBodyBytes} bytes.\n`, { connection: 'close' });
      logger.warn('http', `${method} ${rawPath} -> 413 (body over ${options.maxBodyBytes} bytes)`);
      return;
    }
    const body = bodyResult.body;
    const address = server.address() as AddressInfo | null;
    const host = validHostHeader(req.headers.host) ? req.headers.host : `127.0.0.1:${address?.port ?? 0}`;
    const http: RpcHttpData = {
      method,
      url: `http://${host}${rawUrl}`,
      headers: flatHeaders(req),
      params: chosen.params,
      ...(body.length > 0 && method !== 'GET' && method !== 'HEAD' ? { body: { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) } } : {}),
    };

    const { fn } = chosen.f;
    const invocationId = randomUUID();
    let status = 500;
    try {
      const result = await options.inFlight.track(invoke(runtime, fn, { trigger: { http }, invocationId }, options.functionTimeoutMs));
      const out = httpResponseOf(result.response);
      if (!out) {
        status = 204;
        plain(res, 204);
      } else {
        status = Number(out.statusCode ?? '200');
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
      }
    } catch (err) {
      status = 500;
      if (err instanceof FunctionTimeoutError) logger.error(fn.name, err.message);
      else logger.error(fn.name, `Exception while executing function: Functions.${fn.name}: ${err instanceof Error && err.stack ? err.stack : describeError(err)}`);
      // No stack, message or secret goes back to the caller (as in Azure: an empty 500).
      plain(res, 500);
    }
    const ms = Math.round(performance.now() - started);
    logger.info('http', `${method} ${rawPath} -> ${status} Functions.${fn.name} (Id=${invocationId}, Duration=${ms}ms)`);
  }

  return server;
}
