/**
 * An in-process, in-memory fake OCI registry for fast unit tests and fault injection.
 *
 * It speaks the distribution-spec v1.1 API over plain HTTP on 127.0.0.1 and, where the spec and
 * distribution 2.8 differ, mimics distribution 2.8:
 *
 * - upload Locations carry an HMAC-protected `_state` token pinning the offset; a request with a stale
 *   `_state` gets 404 BLOB_UPLOAD_INVALID and changes nothing: the session stays, and its newest Location
 *   goes on (`distributionStateCheck`; what distribution 2.8.2 does, checked in test/integration/resume.test.ts,
 *   although its handler calls the upload's Cancel there);
 * - blobs are stored once by digest but are only visible in a repository after being linked into it
 *   (pushed or mounted there);
 * - an OCI manifest/index is answered 404 MANIFEST_UNKNOWN when a non-empty Accept header omits its type;
 * - no referrers API (a plain 404 page) unless `referrers` asks for one: then `GET /v2/<name>/referrers/<digest>`
 *   lists the manifests of the repository whose `subject` is that digest (distribution-spec v1.1 "Listing
 *   Referrers"), optionally filtered by `artifactType` and paginated with `Link`, and a manifest PUT with a
 *   `subject` answers `OCI-Subject`.
 *
 * Faults (`FaultRule`) are checked before normal handling: `status`, `reset`, `resetAfterBody` and
 * `delay` when a request arrives (delays add up; the first other matching rule wins), the blob-body
 * faults (`ignoreRange`, `shortBody`, `longContentRange`) only when a blob GET is about to be served
 * with bytes, on whichever listener serves them. Modelled on go-containerregistry `pkg/registry`
 * (structure only; nothing copied).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export type FaultAction =
  /** answer with this status (body defaults to a registry error JSON chosen by status) */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** destroy the socket (TCP RST) without reading the body or answering */
  | { kind: 'reset' }
  /** read and APPLY the request normally, then destroy the socket instead of answering */
  | { kind: 'resetAfterBody' }
  /** blob GET: answer 200 with the full body although Range was sent */
  | { kind: 'ignoreRange' }
  /** blob GET: send the correct headers but only `bytes` bytes of body, then drop the connection */
  | { kind: 'shortBody'; bytes: number }
  /** blob GET: 206 with a Content-Range (and body) that does not match the request */
  | { kind: 'longContentRange' }
  /** blob GET: the correct headers and `bytes` bytes of body, then nothing more (the connection stays open) */
  | { kind: 'stallBody'; bytes: number }
  /** blob GET: the correct headers, then one byte every `intervalMs` (a trickle that never ends on its own) */
  | { kind: 'trickle'; intervalMs: number }
  /** wait, then continue (later rules may still apply) */
  | { kind: 'delay'; ms: number };

export interface FaultRule {
  /** HTTP method to match (case-insensitive); any when absent */
  method?: string;
  /** RegExp tested against the URL path + query (as sent, not decoded); any when absent */
  path?: RegExp;
  /** how many times to apply (default: unlimited); decremented on each application */
  times?: number;
  action: FaultAction;
}

export type FakeRegistryAuth =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; username?: string; password?: string; tokenTtlSeconds?: number };

export interface FakeRegistryOptions {
  /** none when absent: every request is allowed anonymously */
  auth?: FakeRegistryAuth;
  /** honour `Range` on blob GET/HEAD (default true); false → always 200 with the full body */
  rangeSupport?: boolean;
  /** POST answers `OCI-Chunk-Min-Length`; a chunk shorter than this that turns out not to be the last
   *  one (another PATCH, or a PUT with a body, follows) makes that next request fail with 400 SIZE_INVALID */
  chunkMinLength?: number;
  /** distribution 2.8 `_state` offset check on upload URLs (default true) */
  distributionStateCheck?: boolean;
  /** blob GETs answer 307 to signed storage URLs: 'same' = same origin, 'other' = a second listener */
  redirectBlobsTo?: 'same' | 'other';
  /** lifetime of the signed storage URLs (default 1200 s, as distribution's s3/azure drivers) */
  redirectTtlSeconds?: number;
  /** serve the referrers API (absent: 404, as distribution 2.8) */
  referrers?: {
    /** apply `?artifactType=` and say so with `OCI-Filters-Applied` (default false: the full list, unfiltered) */
    filter?: boolean;
    /** descriptors per page; more → a `Link: <…>; rel="next"` (default: one page) */
    pageSize?: number;
  };
}

export interface RecordedRequest {
  method: string;
  /** path + query as sent */
  url: string;
  /** lowercased header names */
  headers: Record<string, string | string[] | undefined>;
  /** bytes of request body read (0 when the socket was reset before reading) */
  bodyLength: number;
}

export interface StoredManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

export interface FakeRegistry {
  /** '127.0.0.1:PORT' */
  readonly host: string;
  /** 'http://127.0.0.1:PORT' */
  readonly url: string;
  /** every request seen by the registry listener, in arrival order */
  readonly requests: RecordedRequest[];
  /** every request seen by the second (storage) listener of `redirectBlobsTo: 'other'` */
  readonly redirectRequests: RecordedRequest[];
  /** base URL of the storage listener ('other'), else undefined */
  readonly redirectUrl: string | undefined;
  /** a request to a signed storage URL (either listener) carried an Authorization header */
  readonly redirectAuthorizationSeen: boolean;
  /** checked in order on every request; mutable at runtime */
  faults: FaultRule[];
  /** called as each request arrives, before it is handled (a test acts as another client at that instant) */
  onRequest: ((r: RecordedRequest) => void) | undefined;
  /** descriptors of `repo`'s manifests whose subject is `digest`, as the referrers API lists them */
  referrersOf(repo: string, digest: string): Record<string, unknown>[];
  /** stores the blob and links it into `repo`; returns its sha256 digest */
  putBlob(repo: string, data: Uint8Array): string;
  /** serves `data` (same length) under an existing blob's digest from now on: a corrupt store */
  corruptBlob(digest: string, data: Uint8Array): void;
  /** stores the manifest (exact bytes) by digest and tags it when `ref` is a tag; returns the digest.
   *  No reference check is made (use HTTP PUT for that). */
  putManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): string;
  getBlob(digest: string): Uint8Array | undefined;
  getManifest(repo: string, ref: string): StoredManifest | undefined;
  /** upload sessions opened and neither completed nor cancelled */
  openUploads(): number;
  /** tags of `repo`, sorted */
  tags(repo: string): string[];
  /** forget all content, uploads, tokens, recorded requests and faults */
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Constants and small helpers
// ---------------------------------------------------------------------------------------------

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** distribution's maxManifestBodySize */
const MAX_MANIFEST_BYTES = 4 << 20;
const DEFAULT_TOKEN_TTL_SECONDS = 300;
const DEFAULT_REDIRECT_TTL_SECONDS = 1200;
const TOKEN_SERVICE = 'fake';

const NAME_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const CONTENT_RANGE_RE = /^([0-9]+)-([0-9]+)$/;
const RANGE_RE = /^bytes=([0-9]+)-([0-9]+)$/;

/** error code → [HTTP status, message] as in distribution `registry/api/v2/errors.go` */
const ERROR_CODES = {
  BLOB_UNKNOWN: [404, 'blob unknown to registry'],
  BLOB_UPLOAD_INVALID: [404, 'blob upload invalid'],
  BLOB_UPLOAD_UNKNOWN: [404, 'blob upload unknown to registry'],
  DIGEST_INVALID: [400, 'provided digest did not match uploaded content'],
  MANIFEST_BLOB_UNKNOWN: [400, 'blob unknown to registry'],
  MANIFEST_INVALID: [400, 'manifest invalid'],
  MANIFEST_UNKNOWN: [404, 'manifest unknown'],
  NAME_INVALID: [400, 'invalid repository name'],
  NAME_UNKNOWN: [404, 'repository name not known to registry'],
  PAGINATION_NUMBER_INVALID: [400, 'invalid number of results requested'],
  RANGE_INVALID: [416, 'invalid content range'],
  SIZE_INVALID: [400, 'provided length did not match content length'],
  UNAUTHORIZED: [401, 'authentication required'],
  DENIED: [403, 'requested access to the resource is denied'],
  UNSUPPORTED: [405, 'The operation is unsupported.'],
  TOOMANYREQUESTS: [429, 'too many requests'],
  UNAVAILABLE: [503, 'service unavailable'],
  UNKNOWN: [500, 'unknown error'],
} as const satisfies Record<string, readonly [number, string]>;

type ErrorCode = keyof typeof ERROR_CODES;

interface RegistryErrorEntry {
  code: ErrorCode;
  message?: string;
  detail?: unknown;
}

const BODY_FAULTS = new Set<FaultAction['kind']>([
  'ignoreRange',
  'shortBody',
  'longContentRange',
  'stallBody',
  'trickle',
]);
const EMPTY = Buffer.alloc(0);

function digestOf(data: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

function defaultFaultCode(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NAME_UNKNOWN';
    case 416:
      return 'RANGE_INVALID';
    case 429:
      return 'TOOMANYREQUESTS';
    case 503:
      return 'UNAVAILABLE';
    default:
      return status < 500 ? 'UNSUPPORTED' : 'UNKNOWN';
  }
}

function errorBody(errors: RegistryErrorEntry[]): string {
  return JSON.stringify({
    errors: errors.map((e) => ({
      code: e.code,
      message: e.message ?? ERROR_CODES[e.code][1],
      ...(e.detail === undefined ? {} : { detail: e.detail }),
    })),
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** media type without parameters, lowercased; '' when absent */
function bareMediaType(v: string | undefined): string {
  return (v ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] ?? EMPTY) : Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** `bytes=a-b` with a ≤ b < size; anything else (open, suffix, multi, out of bounds) → undefined */
function parseRange(header: string, size: number): [number, number] | undefined {
  const m = RANGE_RE.exec(header.trim());
  if (!m?.[1] || !m[2]) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end || end >= size) return undefined;
  return [start, end];
}

// ---------------------------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------------------------

interface Upload {
  uuid: string;
  repo: string;
  chunks: Buffer[];
  size: number;
  startedAt: string;
  /** the last PATCH was shorter than chunkMinLength: only a body-less PUT may follow */
  shortChunkPending: boolean;
}

interface UploadState {
  Name: string;
  UUID: string;
  Offset: number;
  StartedAt: string;
}

interface Token {
  /** resource (`repository:<name>` etc.) → granted actions */
  grants: Map<string, Set<string>>;
  expiresAt: number;
}

type Route =
  | { kind: 'base' }
  | { kind: 'token' }
  | { kind: 'storage'; digest: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploadStart'; name: string }
  | { kind: 'upload'; name: string; uuid: string }
  | { kind: 'manifest'; name: string; ref: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  body: Buffer;
  record: RecordedRequest;
  /** 'http://<Host header>' for absolute Locations */
  base: string;
  /** resetAfterBody: destroy the socket instead of answering */
  dropResponse: boolean;
  /** bearer token presented and valid, if any */
  token: Token | undefined;
}

// ---------------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------------

class FakeRegistryServer implements FakeRegistry {
  host = '';
  url = '';
  redirectUrl: string | undefined;
  readonly requests: RecordedRequest[] = [];
  readonly redirectRequests: RecordedRequest[] = [];
  faults: FaultRule[] = [];
  onRequest: ((r: RecordedRequest) => void) | undefined;

  private redirectAuthSeen = false;
  private readonly blobs = new Map<string, Buffer>();
  /** repo → linked blob digests */
  private readonly links = new Map<string, Set<string>>();
  /** repo → digest → manifest */
  private readonly manifests = new Map<string, Map<string, StoredManifest>>();
  /** repo → tag → digest */
  private readonly tagMap = new Map<string, Map<string, string>>();
  private readonly uploads = new Map<string, Upload>();
  private readonly tokens = new Map<string, Token>();
  private readonly secret = randomBytes(32);

  private readonly rangeSupport: boolean;
  private readonly stateCheck: boolean;
  private readonly redirectTtlMs: number;
  private readonly server: Server;
  private storageServer: Server | undefined;

  constructor(private readonly opts: FakeRegistryOptions) {
    this.rangeSupport = opts.rangeSupport ?? true;
    this.stateCheck = opts.distributionStateCheck ?? true;
    this.redirectTtlMs = (opts.redirectTtlSeconds ?? DEFAULT_REDIRECT_TTL_SECONDS) * 1000;
    this.server = createServer((req, res) => this.dispatch(req, res, 'registry'));
    if (opts.redirectBlobsTo === 'other') {
      this.storageServer = createServer((req, res) => this.dispatch(req, res, 'storage'));
    }
  }

  get redirectAuthorizationSeen(): boolean {
    return this.redirectAuthSeen;
  }

  async start(): Promise<void> {
    const port = await listen(this.server);
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
    if (this.storageServer) this.redirectUrl = `http://127.0.0.1:${await listen(this.storageServer)}`;
  }

  async close(): Promise<void> {
    await Promise.all([closeServer(this.server), this.storageServer ? closeServer(this.storageServer) : undefined]);
  }

  // ----- direct access -----------------------------------------------------------------------

  putBlob(repo: string, data: Uint8Array): string {
    const digest = digestOf(data);
    this.blobs.set(digest, Buffer.from(data));
    this.link(repo, digest);
    return digest;
  }

  corruptBlob(digest: string, data: Uint8Array): void {
    const old = this.blobs.get(digest);
    if (!old || old.length !== data.length)
      throw new Error(`corruptBlob: ${digest} is not stored with ${data.length} bytes`);
    this.blobs.set(digest, Buffer.from(data));
  }

  putManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): string {
    const digest = digestOf(bytes);
    if (ref.includes(':') && ref !== digest && ref !== digestOf(bytes, 'sha512')) {
      throw new Error(`putManifest: ${ref} is not the digest of the given bytes (${digest})`);
    }
    this.storeManifest(repo, digest, Buffer.from(bytes), mediaType);
    if (!ref.includes(':')) this.tagsOf(repo).set(ref, digest);
    return digest;
  }

  getBlob(digest: string): Uint8Array | undefined {
    return this.blobs.get(digest);
  }

  openUploads(): number {
    return this.uploads.size;
  }

  getManifest(repo: string, ref: string): StoredManifest | undefined {
    const digest = ref.includes(':') ? ref : this.tagMap.get(repo)?.get(ref);
    return digest === undefined ? undefined : this.manifests.get(repo)?.get(digest);
  }

  tags(repo: string): string[] {
    return [...(this.tagMap.get(repo)?.keys() ?? [])].sort();
  }

  reset(): void {
    this.blobs.clear();
    this.links.clear();
    this.manifests.clear();
    this.tagMap.clear();
    this.uploads.clear();
    this.tokens.clear();
    this.requests.length = 0;
    this.redirectRequests.length = 0;
    this.faults = [];
    this.onRequest = undefined;
    this.redirectAuthSeen = false;
  }

  // ----- storage helpers ---------------------------------------------------------------------

  private link(repo: string, digest: string): void {
    let set = this.links.get(repo);
    if (!set) this.links.set(repo, (set = new Set()));
    set.add(digest);
  }

  private isLinked(repo: string, digest: string): boolean {
    return this.blobs.has(digest) && (this.links.get(repo)?.has(digest) ?? false);
  }

  private tagsOf(repo: string): Map<string, string> {
    let m = this.tagMap.get(repo);
    if (!m) this.tagMap.set(repo, (m = new Map()));
    return m;
  }

  private storeManifest(repo: string, digest: string, bytes: Buffer, mediaType: string): void {
    let m = this.manifests.get(repo);
    if (!m) this.manifests.set(repo, (m = new Map()));
    m.set(digest, { bytes, mediaType, digest });
  }

  private repoExists(repo: string): boolean {
    return (this.links.get(repo)?.size ?? 0) > 0 || (this.manifests.get(repo)?.size ?? 0) > 0;
  }

  // ----- request plumbing --------------------------------------------------------------------

  private dispatch(req: IncomingMessage, res: ServerResponse, listener: 'registry' | 'storage'): void {
    this.handle(req, res, listener).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) {
        req.socket.destroy();
        return;
      }
      const body = errorBody([{ code: 'UNKNOWN', detail: String(err) }]);
      res.writeHead(500, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, listener: 'registry' | 'storage'): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const record: RecordedRequest = { method, url: rawUrl, headers: { ...req.headers }, bodyLength: 0 };
    (listener === 'registry' ? this.requests : this.redirectRequests).push(record);
    this.onRequest?.(record);
    const url = new URL(rawUrl, 'http://fake.invalid');
    if (url.pathname.startsWith('/_storage/') && req.headers.authorization !== undefined) this.redirectAuthSeen = true;

    // Faults checked on arrival: delays add up, then the first status/reset/resetAfterBody rule wins.
    let dropResponse = false;
    for (const rule of [...this.faults]) {
      if (BODY_FAULTS.has(rule.action.kind) || !this.matches(rule, method, rawUrl)) continue;
      this.consume(rule);
      const action = rule.action;
      if (action.kind === 'delay') {
        await sleep(action.ms);
        continue;
      }
      if (action.kind === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      if (action.kind === 'resetAfterBody') {
        dropResponse = true;
        break;
      }
      if (action.kind === 'status') {
        try {
          record.bodyLength = (await readBody(req)).length;
        } catch {
          req.socket.destroy();
          return;
        }
        const body = action.body ?? errorBody([{ code: defaultFaultCode(action.status), detail: 'injected fault' }]);
        const headers: OutgoingHttpHeaders = {
          'Content-Type': action.body === undefined ? 'application/json' : 'text/plain',
          'Content-Length': Buffer.byteLength(body),
          ...action.headers,
        };
        res.writeHead(action.status, headers);
        res.end(method === 'HEAD' ? undefined : body);
        return;
      }
    }

    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      req.socket.destroy();
      return;
    }
    record.bodyLength = body.length;

    const ctx: Ctx = {
      req,
      res,
      method,
      url,
      body,
      record,
      base: `http://${req.headers.host ?? this.host}`,
      dropResponse,
      token: undefined,
    };

    const route = this.route(url.pathname, listener);
    if (!route) {
      this.send(ctx, 404, { 'Content-Type': 'text/plain; charset=utf-8' }, '404 page not found\n');
      return;
    }
    if (route.kind === 'storage') return this.serveStorage(ctx, route.digest);
    if (route.kind === 'token') return this.serveToken(ctx);
    if (!this.authorize(ctx, route)) return;

    switch (route.kind) {
      case 'base':
        return this.send(ctx, 200, { 'Content-Type': 'application/json' }, '{}');
      case 'blob':
        return this.handleBlob(ctx, route.name, route.digest);
      case 'uploadStart':
        return this.handleUploadStart(ctx, route.name);
      case 'upload':
        return this.handleUpload(ctx, route.name, route.uuid);
      case 'manifest':
        return this.handleManifest(ctx, route.name, route.ref);
      case 'tags':
        return this.handleTags(ctx, route.name);
      case 'referrers':
        return this.handleReferrers(ctx, route.name, route.digest);
    }
  }

  private matches(rule: FaultRule, method: string, rawUrl: string): boolean {
    if (rule.times !== undefined && rule.times <= 0) return false;
    if (rule.method !== undefined && rule.method.toUpperCase() !== method) return false;
    if (rule.path) {
      rule.path.lastIndex = 0;
      if (!rule.path.test(rawUrl)) return false;
    }
    return true;
  }

  private consume(rule: FaultRule): void {
    if (rule.times !== undefined) rule.times -= 1;
  }

  /** first matching blob-body fault for this blob GET, consumed */
  private takeBodyFault(ctx: Ctx): FaultAction | undefined {
    if (ctx.method !== 'GET') return undefined;
    for (const rule of this.faults) {
      if (BODY_FAULTS.has(rule.action.kind) && this.matches(rule, ctx.method, ctx.record.url)) {
        this.consume(rule);
        return rule.action;
      }
    }
    return undefined;
  }

  private route(pathname: string, listener: 'registry' | 'storage'): Route | undefined {
    const storage = /^\/_storage\/blobs\/([^/]+)$/.exec(pathname);
    if (storage?.[1]) {
      const digest = safeDecode(storage[1]);
      return digest === undefined ? undefined : { kind: 'storage', digest };
    }
    if (listener === 'storage') return undefined;
    if (pathname === '/token' && this.opts.auth?.kind === 'bearer') return { kind: 'token' };
    if (pathname === '/v2' || pathname === '/v2/') return { kind: 'base' };
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(pathname)) && m[1]) return { kind: 'uploadStart', name: m[1] };
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(pathname)) && m[1] && m[2]) {
      const uuid = safeDecode(m[2]);
      return uuid === undefined ? undefined : { kind: 'upload', name: m[1], uuid };
    }
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(pathname)) && m[1] && m[2]) {
      const digest = safeDecode(m[2]);
      return digest === undefined ? undefined : { kind: 'blob', name: m[1], digest };
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname)) && m[1] && m[2]) {
      const ref = safeDecode(m[2]);
      return ref === undefined ? undefined : { kind: 'manifest', name: m[1], ref };
    }
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(pathname)) && m[1]) return { kind: 'tags', name: m[1] };
    if (this.opts.referrers && (m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(pathname)) && m[1] && m[2]) {
      const digest = safeDecode(m[2]);
      return digest === undefined ? undefined : { kind: 'referrers', name: m[1], digest };
    }
    return undefined;
  }

  // ----- responses ---------------------------------------------------------------------------

  private send(ctx: Ctx, status: number, headers: OutgoingHttpHeaders, body?: string | Uint8Array): void {
    if (ctx.dropResponse) {
      ctx.req.socket.resetAndDestroy();
      return;
    }
    const buf = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body) : body;
    const all: OutgoingHttpHeaders = { 'Docker-Distribution-API-Version': 'registry/2.0', ...headers };
    if (status !== 204 && status !== 304 && all['Content-Length'] === undefined) all['Content-Length'] = buf.length;
    ctx.res.writeHead(status, all);
    ctx.res.end(ctx.method === 'HEAD' || status === 204 ? undefined : buf);
  }

  private sendError(ctx: Ctx, errors: RegistryErrorEntry[], headers: OutgoingHttpHeaders = {}, status?: number): void {
    const first = errors[0];
    const code = status ?? (first ? ERROR_CODES[first.code][0] : 500);
    this.send(ctx, code, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, errorBody(errors));
  }

  private fail(ctx: Ctx, code: ErrorCode, detail?: unknown, headers?: OutgoingHttpHeaders): void {
    this.sendError(ctx, [{ code, detail }], headers);
  }

  // ----- auth --------------------------------------------------------------------------------

  private basicCredentials(ctx: Ctx): { user: string; pass: string } | undefined {
    const h = headerValue(ctx.req.headers.authorization);
    const m = h ? /^Basic\s+(\S+)$/i.exec(h) : null;
    if (!m?.[1]) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i < 0 ? undefined : { user: decoded.slice(0, i), pass: decoded.slice(i + 1) };
  }

  private requiredActions(ctx: Ctx, route: Route): string[] {
    if (route.kind === 'base') return [];
    if (ctx.method === 'DELETE') return ['delete'];
    if (ctx.method === 'GET' || ctx.method === 'HEAD') return ['pull'];
    return ['pull', 'push'];
  }

  /** true when the request may proceed; otherwise the 401 has been sent */
  private authorize(ctx: Ctx, route: Route): boolean {
    const auth = this.opts.auth;
    if (!auth) return true;
    if (auth.kind === 'basic') {
      const c = this.basicCredentials(ctx);
      if (c && c.user === auth.username && c.pass === auth.password) return true;
      this.fail(ctx, 'UNAUTHORIZED', undefined, { 'WWW-Authenticate': 'Basic realm="fake"' });
      return false;
    }
    const name = 'name' in route ? route.name : undefined;
    const actions = this.requiredActions(ctx, route);
    const h = headerValue(ctx.req.headers.authorization);
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    const presented = m?.[1];
    const token = presented === undefined ? undefined : this.tokens.get(presented);
    let error: string | undefined;
    if (presented !== undefined && (!token || token.expiresAt <= Date.now())) {
      error = 'invalid_token';
    } else if (token) {
      const granted = name === undefined ? undefined : token.grants.get(`repository:${name}`);
      if (actions.every((a) => granted?.has(a))) {
        ctx.token = token;
        return true;
      }
      error = 'insufficient_scope';
    }
    let challenge = `Bearer realm="${this.url}/token",service="${TOKEN_SERVICE}"`;
    if (name !== undefined && actions.length > 0) challenge += `,scope="repository:${name}:${actions.join(',')}"`;
    if (error) challenge += `,error="${error}"`;
    this.fail(ctx, 'UNAUTHORIZED', error, { 'WWW-Authenticate': challenge });
    return false;
  }

  private serveToken(ctx: Ctx): void {
    const auth = this.opts.auth;
    if (auth?.kind !== 'bearer') return this.send(ctx, 404, {}, '404 page not found\n');
    // Only the GET flow; a 404 on POST tells OAuth2 clients to fall back to GET (D-AUTH oauth.md).
    if (ctx.method !== 'GET') return this.send(ctx, 404, { 'Content-Type': 'text/plain' }, '404 page not found\n');
    if (auth.username !== undefined) {
      const c = this.basicCredentials(ctx);
      if (!c || c.user !== auth.username || c.pass !== (auth.password ?? '')) {
        return this.fail(ctx, 'UNAUTHORIZED', 'invalid credentials', {
          'WWW-Authenticate': `Basic realm="${TOKEN_SERVICE}-token"`,
        });
      }
    }
    const grants = new Map<string, Set<string>>();
    for (const param of ctx.url.searchParams.getAll('scope')) {
      for (const scope of param.split(' ')) {
        const first = scope.indexOf(':');
        const last = scope.lastIndexOf(':');
        if (first < 0 || last <= first) continue;
        const resource = `${scope.slice(0, first).replace(/\(.*\)$/, '')}:${scope.slice(first + 1, last)}`;
        let actions = grants.get(resource);
        if (!actions) grants.set(resource, (actions = new Set()));
        for (const a of scope.slice(last + 1).split(',')) {
          if (a === '*') ['pull', 'push', 'delete'].forEach((x) => actions.add(x));
          else if (a) actions.add(a);
        }
      }
    }
    const ttl = auth.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, { grants, expiresAt: Date.now() + ttl * 1000 });
    const body = JSON.stringify({ token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() });
    this.send(ctx, 200, { 'Content-Type': 'application/json' }, body);
  }

  // ----- blobs -------------------------------------------------------------------------------

  private handleBlob(ctx: Ctx, name: string, digest: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    if (!DIGEST_RE.test(digest)) return this.fail(ctx, 'DIGEST_INVALID', { digest });
    if (ctx.method === 'DELETE') {
      if (!this.isLinked(name, digest)) return this.fail(ctx, 'BLOB_UNKNOWN', { digest });
      this.links.get(name)?.delete(digest);
      return this.send(ctx, 202, {});
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.fail(ctx, 'UNSUPPORTED');
    const data = this.blobs.get(digest);
    if (!data || !this.isLinked(name, digest)) return this.fail(ctx, 'BLOB_UNKNOWN', { digest });
    if (this.opts.redirectBlobsTo && ctx.method === 'GET') {
      const base = this.opts.redirectBlobsTo === 'other' ? (this.redirectUrl ?? this.url) : ctx.base;
      const expires = Date.now() + this.redirectTtlMs;
      const sig = this.sign(`${digest}\n${expires}`);
      const location = `${base}/_storage/blobs/${digest}?expires=${expires}&sig=${sig}`;
      return this.send(ctx, 307, { Location: location, 'Docker-Content-Digest': digest });
    }
    this.serveBytes(ctx, digest, data);
  }

  /** a signed storage URL (either listener): no registry auth, expiring signature */
  private serveStorage(ctx: Ctx, digest: string): void {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.send(ctx, 405, {});
    const expires = Number(ctx.url.searchParams.get('expires'));
    const sig = ctx.url.searchParams.get('sig') ?? '';
    const expected = this.sign(`${digest}\n${expires}`);
    const data = this.blobs.get(digest);
    const denied = (msg: string): void =>
      this.send(
        ctx,
        403,
        { 'Content-Type': 'application/xml' },
        `<Error><Code>AccessDenied</Code><Message>${msg}</Message></Error>`,
      );
    if (sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) {
      return denied('Signature does not match');
    }
    if (!Number.isFinite(expires) || expires <= Date.now()) return denied('Request has expired');
    if (!data)
      return this.send(ctx, 404, { 'Content-Type': 'application/xml' }, '<Error><Code>NoSuchKey</Code></Error>');
    this.serveBytes(ctx, digest, data);
  }

  private serveBytes(ctx: Ctx, digest: string, data: Buffer): void {
    const size = data.length;
    const headers: OutgoingHttpHeaders = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
    };
    if (this.rangeSupport) headers['Accept-Ranges'] = 'bytes';
    const fault = this.takeBodyFault(ctx);
    const rangeHeader = headerValue(ctx.req.headers.range);

    let status = 200;
    let start = 0;
    let end = size - 1;
    if (rangeHeader !== undefined && this.rangeSupport && fault?.kind !== 'ignoreRange') {
      const r = parseRange(rangeHeader, size);
      if (!r) {
        return this.send(
          ctx,
          416,
          { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Range': `bytes */${size}` },
          'invalid range\n',
        );
      }
      [start, end] = r;
      status = 206;
    }
    let contentRange = status === 206 ? `bytes ${start}-${end}/${size}` : undefined;
    if (fault?.kind === 'longContentRange') {
      // Answer more (or other) bytes than asked for, with a Content-Range describing what is sent.
      // Asked a-b with b < size-1: send a..size-1. Asked a-(size-1) with a > 0: send 0..size-1.
      // Asked everything (or no Range): send everything with a wrong total.
      status = 206;
      const total = end < size - 1 || start > 0 ? size : size + 1;
      if (end < size - 1) end = size - 1;
      else if (start > 0) start = 0;
      contentRange = `bytes ${start}-${end}/${total}`;
    }
    if (contentRange) headers['Content-Range'] = contentRange;
    const body = size === 0 ? EMPTY : data.subarray(start, end + 1);
    headers['Content-Length'] = body.length;

    if ((fault?.kind === 'stallBody' || fault?.kind === 'trickle') && ctx.method === 'GET' && !ctx.dropResponse) {
      ctx.res.writeHead(status, { 'Docker-Distribution-API-Version': 'registry/2.0', ...headers });
      ctx.res.flushHeaders();
      if (fault.kind === 'stallBody') {
        ctx.res.write(body.subarray(0, Math.min(fault.bytes, body.length - 1)));
        return;
      }
      let at = 0;
      const timer = setInterval(() => {
        if (ctx.res.destroyed || at >= body.length - 1) return void clearInterval(timer);
        ctx.res.write(body.subarray(at, ++at));
      }, fault.intervalMs);
      ctx.res.on('close', () => clearInterval(timer));
      return;
    }
    if (fault?.kind === 'shortBody' && ctx.method === 'GET' && !ctx.dropResponse) {
      const part = body.subarray(0, Math.max(0, Math.min(fault.bytes, body.length - 1)));
      ctx.res.writeHead(status, { 'Docker-Distribution-API-Version': 'registry/2.0', ...headers });
      ctx.res.flushHeaders();
      const socket = ctx.res.socket;
      ctx.res.write(part, () => setTimeout(() => socket?.destroy(), 5));
      return;
    }
    this.send(ctx, status, headers, body);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  // ----- uploads -----------------------------------------------------------------------------

  private packState(up: Upload): string {
    const json = Buffer.from(
      JSON.stringify({ Name: up.repo, UUID: up.uuid, Offset: up.size, StartedAt: up.startedAt } satisfies UploadState),
    );
    const mac = createHmac('sha256', this.secret).update(json).digest();
    return Buffer.concat([mac, json]).toString('base64url');
  }

  private unpackState(token: string): UploadState | undefined {
    const raw = Buffer.from(token, 'base64url');
    if (raw.length <= 32) return undefined;
    const mac = raw.subarray(0, 32);
    const json = raw.subarray(32);
    const expected = createHmac('sha256', this.secret).update(json).digest();
    if (!timingSafeEqual(mac, expected)) return undefined;
    try {
      const v: unknown = JSON.parse(json.toString('utf8'));
      if (isRecord(v) && typeof v.Name === 'string' && typeof v.UUID === 'string' && typeof v.Offset === 'number') {
        return { Name: v.Name, UUID: v.UUID, Offset: v.Offset, StartedAt: String(v.StartedAt) };
      }
    } catch {
      // fall through
    }
    return undefined;
  }

  private uploadLocation(ctx: Ctx, up: Upload): string {
    const loc = `${ctx.base}/v2/${up.repo}/blobs/uploads/${up.uuid}`;
    return this.stateCheck ? `${loc}?_state=${this.packState(up)}` : loc;
  }

  private uploadHeaders(ctx: Ctx, up: Upload): OutgoingHttpHeaders {
    return {
      Location: this.uploadLocation(ctx, up),
      Range: `0-${up.size > 0 ? up.size - 1 : 0}`,
      'Docker-Upload-UUID': up.uuid,
    };
  }

  private handleUploadStart(ctx: Ctx, name: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    if (ctx.method !== 'POST') return this.fail(ctx, 'UNSUPPORTED');
    const q = ctx.url.searchParams;
    const mount = q.get('mount');
    const from = q.get('from');
    if (mount !== null && from !== null && DIGEST_RE.test(mount) && this.isLinked(from, mount)) {
      const auth = this.opts.auth;
      const mayPull = auth?.kind !== 'bearer' || (ctx.token?.grants.get(`repository:${from}`)?.has('pull') ?? false);
      if (mayPull) {
        this.link(name, mount);
        return this.send(ctx, 201, {
          Location: `${ctx.base}/v2/${name}/blobs/${mount}`,
          'Docker-Content-Digest': mount,
        });
      }
    }
    const digest = q.get('digest');
    if (digest !== null && mount === null) {
      if (!DIGEST_RE.test(digest)) return this.fail(ctx, 'DIGEST_INVALID', { digest });
      const actual = digestOf(ctx.body, digest.startsWith('sha512:') ? 'sha512' : 'sha256');
      if (actual !== digest) return this.fail(ctx, 'DIGEST_INVALID', { expected: digest, actual });
      this.blobs.set(digest, Buffer.from(ctx.body));
      this.link(name, digest);
      return this.send(ctx, 201, {
        Location: `${ctx.base}/v2/${name}/blobs/${digest}`,
        'Docker-Content-Digest': digest,
      });
    }
    const up: Upload = {
      uuid: randomUUID(),
      repo: name,
      chunks: [],
      size: 0,
      startedAt: new Date().toISOString(),
      shortChunkPending: false,
    };
    this.uploads.set(up.uuid, up);
    const headers = this.uploadHeaders(ctx, up);
    if (this.opts.chunkMinLength !== undefined) headers['OCI-Chunk-Min-Length'] = String(this.opts.chunkMinLength);
    this.send(ctx, 202, headers);
  }

  /** the upload for this URL, or undefined after answering the error (distribution 2.8 order of checks) */
  private resolveUpload(ctx: Ctx, name: string, uuid: string): Upload | undefined {
    if (this.stateCheck) {
      const raw = ctx.url.searchParams.get('_state');
      const state = raw === null ? undefined : this.unpackState(raw);
      if (!state) {
        this.fail(ctx, 'BLOB_UPLOAD_INVALID', 'invalid upload state');
        return undefined;
      }
      if (state.Name !== name || state.UUID !== uuid) {
        this.fail(ctx, 'BLOB_UPLOAD_INVALID', 'upload state does not match the URL');
        return undefined;
      }
      const up = this.uploads.get(uuid);
      if (!up || up.repo !== name) {
        this.fail(ctx, 'BLOB_UPLOAD_UNKNOWN', { uuid });
        return undefined;
      }
      if (up.size !== state.Offset) {
        // distribution 2.8: "upload resumed at wrong offset", refused; the session stays (see the file comment)
        this.fail(ctx, 'BLOB_UPLOAD_INVALID', `upload resumed at wrong offset: ${state.Offset} != ${up.size}`);
        return undefined;
      }
      return up;
    }
    const up = this.uploads.get(uuid);
    if (!up || up.repo !== name) {
      this.fail(ctx, 'BLOB_UPLOAD_UNKNOWN', { uuid });
      return undefined;
    }
    return up;
  }

  /** checks Content-Range/Content-Length/min-chunk for a body about to be appended; answers and returns false on error */
  private checkChunk(ctx: Ctx, up: Upload): boolean {
    const cr = headerValue(ctx.req.headers['content-range']);
    if (cr !== undefined) {
      const m = CONTENT_RANGE_RE.exec(cr.trim());
      if (!m?.[1] || !m[2]) {
        this.fail(ctx, 'RANGE_INVALID', `malformed Content-Range: ${cr}`, this.uploadHeaders(ctx, up));
        return false;
      }
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (start !== up.size || end < start) {
        this.fail(
          ctx,
          'RANGE_INVALID',
          `Content-Range ${cr} does not start at ${up.size}`,
          this.uploadHeaders(ctx, up),
        );
        return false;
      }
      if (end - start + 1 !== ctx.body.length) {
        this.fail(ctx, 'SIZE_INVALID', `Content-Range ${cr} does not match body length ${ctx.body.length}`);
        return false;
      }
    }
    if (up.shortChunkPending && ctx.body.length > 0) {
      this.fail(
        ctx,
        'SIZE_INVALID',
        `previous chunk was smaller than the minimum chunk size ${this.opts.chunkMinLength}`,
      );
      return false;
    }
    return true;
  }

  private append(up: Upload, body: Buffer): void {
    if (body.length === 0) return;
    up.chunks.push(Buffer.from(body));
    up.size += body.length;
  }

  private handleUpload(ctx: Ctx, name: string, uuid: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    if (!['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE'].includes(ctx.method)) return this.fail(ctx, 'UNSUPPORTED');
    const up = this.resolveUpload(ctx, name, uuid);
    if (!up) return;

    switch (ctx.method) {
      case 'GET':
      case 'HEAD':
        return this.send(ctx, 204, this.uploadHeaders(ctx, up));
      case 'DELETE':
        this.uploads.delete(uuid);
        return this.send(ctx, 204, {});
      case 'PATCH': {
        const ct = bareMediaType(headerValue(ctx.req.headers['content-type']));
        if (ct !== '' && ct !== 'application/octet-stream') return this.fail(ctx, 'UNKNOWN', 'bad Content-Type');
        if (!this.checkChunk(ctx, up)) return;
        this.append(up, ctx.body);
        const min = this.opts.chunkMinLength;
        up.shortChunkPending = min !== undefined && ctx.body.length < min;
        return this.send(ctx, 202, this.uploadHeaders(ctx, up));
      }
      case 'PUT': {
        const digest = ctx.url.searchParams.get('digest');
        if (digest === null || !DIGEST_RE.test(digest)) {
          return this.fail(ctx, 'DIGEST_INVALID', digest === null ? 'digest missing' : { digest });
        }
        if (!this.checkChunk(ctx, up)) return;
        this.append(up, ctx.body);
        const data = Buffer.concat(up.chunks);
        const actual = digestOf(data, digest.startsWith('sha512:') ? 'sha512' : 'sha256');
        if (actual !== digest) {
          this.uploads.delete(uuid);
          return this.fail(ctx, 'DIGEST_INVALID', { expected: digest, actual });
        }
        this.uploads.delete(uuid);
        this.blobs.set(digest, data);
        this.link(name, digest);
        return this.send(ctx, 201, {
          Location: `${ctx.base}/v2/${name}/blobs/${digest}`,
          'Docker-Content-Digest': digest,
        });
      }
    }
  }

  // ----- manifests ---------------------------------------------------------------------------

  private handleManifest(ctx: Ctx, name: string, ref: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    const isDigest = ref.includes(':');
    const validRef = isDigest ? DIGEST_RE.test(ref) : TAG_RE.test(ref);
    switch (ctx.method) {
      case 'GET':
      case 'HEAD': {
        const m = validRef ? this.getManifest(name, ref) : undefined;
        if (!m) return this.fail(ctx, 'MANIFEST_UNKNOWN', { name, reference: ref });
        const accept = (ctx.req.headers.accept ?? '')
          .split(',')
          .map((s) => bareMediaType(s))
          .filter((s) => s !== '');
        if (
          accept.length > 0 &&
          (m.mediaType === OCI_MANIFEST || m.mediaType === OCI_INDEX) &&
          !accept.includes(m.mediaType)
        ) {
          const what =
            m.mediaType === OCI_INDEX
              ? 'OCI index found, but accept header does not support OCI indexes'
              : 'OCI manifest found, but accept header does not support OCI manifests';
          return this.sendError(ctx, [{ code: 'MANIFEST_UNKNOWN', message: what }]);
        }
        return this.send(
          ctx,
          200,
          { 'Content-Type': m.mediaType, 'Docker-Content-Digest': m.digest, ETag: `"${m.digest}"` },
          m.bytes,
        );
      }
      case 'PUT':
        if (!validRef) return this.fail(ctx, 'MANIFEST_INVALID', `invalid reference ${ref}`);
        return this.putManifestHttp(ctx, name, ref, isDigest);
      case 'DELETE': {
        if (!validRef) return this.fail(ctx, 'MANIFEST_UNKNOWN', { name, reference: ref });
        const tags = this.tagMap.get(name);
        if (!isDigest) {
          if (!tags?.delete(ref)) return this.fail(ctx, 'MANIFEST_UNKNOWN', { name, reference: ref });
          return this.send(ctx, 202, {});
        }
        if (!this.manifests.get(name)?.delete(ref)) return this.fail(ctx, 'MANIFEST_UNKNOWN', { name, reference: ref });
        for (const [tag, d] of tags ?? []) if (d === ref) tags?.delete(tag);
        return this.send(ctx, 202, {});
      }
      default:
        return this.fail(ctx, 'UNSUPPORTED');
    }
  }

  private putManifestHttp(ctx: Ctx, name: string, ref: string, isDigest: boolean): void {
    const bytes = ctx.body;
    if (bytes.length > MAX_MANIFEST_BYTES) {
      return this.sendError(
        ctx,
        [{ code: 'SIZE_INVALID', detail: `manifest larger than ${MAX_MANIFEST_BYTES}` }],
        {},
        413,
      );
    }
    const digest = digestOf(bytes);
    if (isDigest && ref !== digest && ref !== digestOf(bytes, 'sha512')) {
      return this.fail(ctx, 'DIGEST_INVALID', { expected: ref, actual: digest });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      return this.fail(ctx, 'MANIFEST_INVALID', 'not JSON');
    }
    if (!isRecord(parsed)) return this.fail(ctx, 'MANIFEST_INVALID', 'not a JSON object');
    const bodyType = typeof parsed.mediaType === 'string' ? parsed.mediaType : undefined;
    const mediaType = bareMediaType(headerValue(ctx.req.headers['content-type'])) || bodyType;
    if (!mediaType) return this.fail(ctx, 'MANIFEST_INVALID', 'no Content-Type and no mediaType');
    if (bodyType !== undefined && bodyType !== mediaType) {
      return this.fail(ctx, 'MANIFEST_INVALID', `mediaType ${bodyType} does not match Content-Type ${mediaType}`);
    }

    const missing: string[] = [];
    const descriptorDigest = (d: unknown): string | undefined =>
      isRecord(d) && typeof d.digest === 'string' && DIGEST_RE.test(d.digest) ? d.digest : undefined;
    if (Array.isArray(parsed.manifests)) {
      for (const child of parsed.manifests) {
        const d = descriptorDigest(child);
        if (d === undefined) return this.fail(ctx, 'MANIFEST_INVALID', 'bad child descriptor');
        if (!this.manifests.get(name)?.has(d)) missing.push(d);
      }
    } else {
      const refs: unknown[] = [];
      if (parsed.config !== undefined) refs.push(parsed.config);
      if (Array.isArray(parsed.layers)) refs.push(...(parsed.layers as unknown[]));
      else if (parsed.layers !== undefined) return this.fail(ctx, 'MANIFEST_INVALID', 'layers is not an array');
      for (const desc of refs) {
        const d = descriptorDigest(desc);
        if (d === undefined) return this.fail(ctx, 'MANIFEST_INVALID', 'bad descriptor');
        // Descriptors with foreign URLs are not required to be present (distribution only checks URL policy).
        if (isRecord(desc) && Array.isArray(desc.urls) && desc.urls.length > 0) continue;
        if (!this.isLinked(name, d)) missing.push(d);
      }
    }
    if (missing.length > 0) {
      return this.sendError(
        ctx,
        missing.map((d) => ({ code: 'MANIFEST_BLOB_UNKNOWN' as const, detail: d })),
      );
    }

    this.storeManifest(name, digest, Buffer.from(bytes), mediaType);
    if (!isDigest) this.tagsOf(name).set(ref, digest);
    const subject = isRecord(parsed.subject) ? descriptorDigest(parsed.subject) : undefined;
    this.send(ctx, 201, {
      Location: `${ctx.base}/v2/${name}/manifests/${digest}`,
      'Docker-Content-Digest': digest,
      ...(this.opts.referrers && subject ? { 'OCI-Subject': subject } : {}),
    });
  }

  // ----- referrers ---------------------------------------------------------------------------

  /** the descriptors of `repo`'s manifests whose subject is `digest`, by digest (spec "Listing Referrers") */
  referrersOf(repo: string, digest: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const m of this.manifests.get(repo)?.values() ?? []) {
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(m.bytes).toString('utf8'));
      } catch {
        continue;
      }
      if (!isRecord(json) || !isRecord(json.subject) || json.subject.digest !== digest) continue;
      const config =
        isRecord(json.config) && typeof json.config.mediaType === 'string' ? json.config.mediaType : undefined;
      const artifactType =
        typeof json.artifactType === 'string' ? json.artifactType : m.mediaType === OCI_INDEX ? undefined : config;
      out.push({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.bytes.length,
        ...(artifactType ? { artifactType } : {}),
        ...(isRecord(json.annotations) ? { annotations: json.annotations } : {}),
      });
    }
    return out.sort((a, b) => String(a.digest).localeCompare(String(b.digest)));
  }

  private handleReferrers(ctx: Ctx, name: string, digest: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    if (ctx.method !== 'GET') return this.fail(ctx, 'UNSUPPORTED');
    if (!DIGEST_RE.test(digest)) return this.fail(ctx, 'DIGEST_INVALID', { digest });
    if (!this.repoExists(name)) return this.fail(ctx, 'NAME_UNKNOWN', { name });
    const q = ctx.url.searchParams;
    const wanted = q.get('artifactType');
    const filter = wanted !== null && this.opts.referrers?.filter === true;
    let all = this.referrersOf(name, digest);
    if (filter) all = all.filter((d) => d.artifactType === wanted);
    const size = this.opts.referrers?.pageSize ?? Math.max(all.length, 1);
    const from = Number(q.get('page') ?? 0) * size;
    const headers: OutgoingHttpHeaders = { 'Content-Type': OCI_INDEX };
    if (filter) headers['OCI-Filters-Applied'] = 'artifactType';
    if (from + size < all.length) {
      const next = new URLSearchParams(q);
      next.set('page', String(from / size + 1));
      headers.Link = `</v2/${name}/referrers/${digest}?${next.toString()}>; rel="next"`;
    }
    this.send(
      ctx,
      200,
      headers,
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: all.slice(from, from + size) }),
    );
  }

  // ----- tags --------------------------------------------------------------------------------

  private handleTags(ctx: Ctx, name: string): void {
    if (!NAME_RE.test(name)) return this.fail(ctx, 'NAME_INVALID', { name });
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.fail(ctx, 'UNSUPPORTED');
    if (!this.repoExists(name)) return this.fail(ctx, 'NAME_UNKNOWN', { name });
    const q = ctx.url.searchParams;
    const nRaw = q.get('n');
    const last = q.get('last');
    let n: number | undefined;
    if (nRaw !== null && nRaw !== '') {
      n = Number(nRaw);
      if (!Number.isInteger(n) || n < 0) return this.fail(ctx, 'PAGINATION_NUMBER_INVALID', { n: nRaw });
    }
    let all = this.tags(name);
    if (last !== null && last !== '') all = all.filter((t) => t > last);
    const page = n === undefined ? all : all.slice(0, n);
    const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/json' };
    const lastOfPage = page[page.length - 1];
    if (n !== undefined && page.length < all.length && lastOfPage !== undefined) {
      headers.Link = `</v2/${name}/tags/list?last=${encodeURIComponent(lastOfPage)}&n=${n}>; rel="next"`;
    }
    this.send(ctx, 200, headers, JSON.stringify({ name, tags: page }));
  }
}

/** Starts a fake registry on 127.0.0.1 with an ephemeral port (and a second one for `redirectBlobsTo: 'other'`). */
export async function startFakeRegistry(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const registry = new FakeRegistryServer(opts);
  await registry.start();
  return registry;
}

/**
 * An OCI image manifest over `config` (stored in `reg`) and the `layers` descriptors, put in `reg` as `repo:tag`;
 * returns the manifest's digest.
 */
export function putOciImage(
  reg: FakeRegistry,
  repo: string,
  tag: string,
  config: Buffer,
  layers: readonly { mediaType: string; digest: string; size: number }[],
): string {
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  return reg.putManifest(
    repo,
    tag,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: reg.putBlob(repo, config),
          size: config.length,
        },
        layers,
      }),
    ),
    mediaType,
  );
}

/**
 * One single-platform OCI image of one layer (`layer`, default a short text) pushed to `reg` as `repo:tag`;
 * returns the manifest's digest. For tests that need an image to import, not a particular one.
 */
export function seedOneLayerImage(
  reg: FakeRegistry,
  repo: string,
  tag: string,
  layer: Buffer = Buffer.from(`layer of ${repo}:${tag}`),
): string {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  return putOciImage(reg, repo, tag, config, [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: reg.putBlob(repo, layer), size: layer.length },
  ]);
}
