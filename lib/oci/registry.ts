/**
 * A client for one registry host: manifests, blobs and upload sessions as the distribution spec
 * defines them, each method one protocol step. No policy lives here (what to skip, when to resume):
 * that is the copy engine's job. Every method takes the caller's AbortSignal.
 *
 * What the client refuses on its own, whoever calls it: an upload `Location` or a tag list `Link` on
 * another origin (the target's token never leaves it; a source cannot make us page through an internal
 * host), a tag list longer than the caller's bound, a manifest larger than registries accept, or one
 * whose bytes do not hash to the digest asked for.
 */
import type { ErrorSide } from '../errors.js';
import type { RetryPolicy } from '../retry.js';
import { ChallengeAuthenticator, type Authenticator, type BoundCredentials } from './auth.js';
import { discard, forEachRange, readAll, readText, type Timeouts } from './body.js';
import type { Digest } from './digest.js';
import { ProtocolError, UnexpectedLengthError, redactUrl, type ProtocolErrorCode } from './errors.js';
import {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MediaType,
  manifestFrom,
  parseManifest,
  resolveMediaType,
  type Descriptor,
  type RawManifest,
} from './manifest.js';
import { Transport, header, type RegistryResponse, type StreamedBody, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends Omit<TransportOptions, 'authenticator'> {
  /** API host, `host[:port]` (already normalised: docker.io → registry-1.docker.io). */
  readonly registry: string;
  /** Plain HTTP instead of TLS (only for hosts listed as insecure). */
  readonly insecure?: boolean;
  readonly credentials?: BoundCredentials;
  /** Replaces the challenge-driven authenticator (e.g. the Entra ID → ACR exchange). */
  readonly authenticator?: Authenticator;
}

export interface ManifestHead {
  readonly digest?: Digest;
  readonly mediaType?: string;
  readonly size?: number;
  /** The `ETag`, for a conditional PUT (`If-Match`) where the registry honours one. */
  readonly etag?: string;
}

/** What reading referrers lists may still cost one caller (an import's plan): pages and bytes left. */
export interface ReferrersQuota {
  pages: number;
  bytes: number;
}

export interface ReferrersList {
  readonly descriptors: readonly Descriptor[];
  /** Every page said it applied the artifactType filter asked for (`OCI-Filters-Applied`). */
  readonly filtered: boolean;
}

export interface UploadSession {
  /** Absolute URL of the session; replaced after every PATCH (it carries the registry's state token). */
  readonly location: string;
  /** `OCI-Chunk-Min-Length`: non-final chunks must be at least this long. */
  readonly minChunkLength?: number;
}

export interface BlobRange {
  /** False when the registry ignored `Range` and sent the whole blob (we cut the part out). */
  readonly rangeHonoured: boolean;
}

/** Per-call options: the caller's signal, and a policy (`oneAttempt` from inside a loop that owns the retries: lib/retry.ts). */
export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly retry?: RetryPolicy;
}

const pull = (repository: string) => `repository:${repository}:pull`;
const push = (repository: string) => `repository:${repository}:pull,push`;
/** Repositories a client remembers having seen hold a blob (`knownToHoldBlobs`). */
const MAX_HOLDING_REMEMBERED = 1000;

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  readonly side: ErrorSide | undefined;
  private readonly transport: Transport;
  private readonly origin: string;
  /** Repositories this client has seen hold a blob (a HEAD or a mount answered so), the oldest forgotten first. */
  private readonly holding = new Set<string>();

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.baseUrl = `${options.insecure ? 'http' : 'https'}://${options.registry}`;
    this.origin = new URL(this.baseUrl).origin;
    this.side = options.side;
    const authenticator =
      options.authenticator ??
      new ChallengeAuthenticator({
        registry: options.registry,
        credentials: options.credentials,
        // token requests go through the same transport (retries, dispatcher, deadlines), minus the auth layer
        fetchToken: (url, authorization, signal) => this.transport.fetchText(url, authorization, signal),
        allowHttpRealm: options.insecure ?? false,
        side: options.side,
      });
    this.transport = new Transport({ ...options, authenticator });
  }

  get timeouts(): Timeouts {
    return this.transport.timeouts;
  }

  /** The retry policy of this client's requests (callers that own their retries use the same). */
  get retryPolicy(): RetryPolicy {
    return this.transport.retry;
  }

  private url(path: string): URL {
    return new URL(`/v2/${path}`, this.baseUrl);
  }

  private error(code: ProtocolErrorCode, message: string, temporary = false): ProtocolError {
    return new ProtocolError(code, message, { temporary, side: this.side });
  }

  /** `GET /v2/`: checks the registry answers and our credentials work (a 401 after auth is an error). */
  async ping(o: CallOptions = {}): Promise<void> {
    const res = await this.transport.expect(
      { method: 'GET', url: this.url(''), scopes: [], signal: o.signal, retry: o.retry },
      200,
    );
    await discard(res.body);
  }

  // ---- manifests -------------------------------------------------------------------------------

  /** HEAD a manifest: digest and media type without spending a pull (Docker Hub counts GETs only). */
  async headManifest(repository: string, ref: string, o: CallOptions = {}): Promise<ManifestHead | undefined> {
    const res = await this.transport.send({
      method: 'HEAD',
      url: this.url(`${repository}/manifests/${ref}`),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [pull(repository)],
      signal: o.signal,
      retry: o.retry,
    });
    if (res.status === 404) {
      await discard(res.body);
      return undefined;
    }
    if (res.status !== 200) throw await this.transport.errorFrom('HEAD', res);
    await discard(res.body);
    const digest = header(res.headers, 'docker-content-digest') as Digest | undefined;
    const length = Number(header(res.headers, 'content-length'));
    const etag = header(res.headers, 'etag');
    return {
      digest,
      mediaType: header(res.headers, 'content-type')?.split(';')[0]?.trim(),
      size: Number.isFinite(length) ? length : undefined,
      ...(etag ? { etag } : {}),
    };
  }

  /** GET a manifest's exact bytes; when `ref` is a digest, the bytes must hash to it. */
  async getManifest(repository: string, ref: string, o: CallOptions = {}): Promise<RawManifest> {
    const res = await this.transport.expect(
      {
        method: 'GET',
        url: this.url(`${repository}/manifests/${ref}`),
        headers: { accept: MANIFEST_ACCEPT },
        scopes: [pull(repository)],
        signal: o.signal,
        retry: o.retry,
      },
      200,
    );
    const declared = Number(header(res.headers, 'content-length'));
    const what = `manifest ${repository}:${ref} on ${this.registry}`;
    if (declared > MAX_MANIFEST_BYTES) {
      await discard(res.body, 0);
      res.body.destroy();
      throw this.error(
        'MANIFEST_TOO_LARGE',
        `${what} is ${declared} bytes; registries accept at most ${MAX_MANIFEST_BYTES}`,
      );
    }
    const bytes = await this.transport.read(res, () =>
      readAll(res.body, MAX_MANIFEST_BYTES + 1, this.timeouts, `GET ${what}`),
    );
    if (bytes.length > MAX_MANIFEST_BYTES)
      throw this.error('MANIFEST_TOO_LARGE', `${what} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const raw = manifestFrom(bytes, resolveMediaType(header(res.headers, 'content-type'), bytes));
    if (ref.includes(':') && raw.digest !== ref) {
      throw this.error(
        'DIGEST_MISMATCH',
        `${this.registry}/${repository}@${ref} served a manifest whose digest is ${raw.digest}`,
      );
    }
    return raw;
  }

  /**
   * PUT exact bytes under a tag or digest with their own media type; with `ifMatch`, only over that ETag
   * (a registry that honours it answers 412 otherwise). Returns `OCI-Subject`: the registry processed the
   * manifest's `subject` into its referrers API (spec "Pushing Manifests with Subject").
   */
  async putManifest(
    repository: string,
    ref: string,
    manifest: RawManifest,
    o: CallOptions & { readonly ifMatch?: string } = {},
  ): Promise<{ subject?: string }> {
    const res = await this.transport.expect(
      {
        method: 'PUT',
        url: this.url(`${repository}/manifests/${ref}`),
        headers: { 'content-type': manifest.mediaType, ...(o.ifMatch ? { 'if-match': o.ifMatch } : {}) },
        body: manifest.bytes,
        scopes: [push(repository)],
        signal: o.signal,
        retry: o.retry,
      },
      200,
      201,
      202,
    );
    await discard(res.body);
    const digest = header(res.headers, 'docker-content-digest');
    if (digest && digest !== manifest.digest) {
      throw this.error(
        'DIGEST_MISMATCH',
        `${this.registry} stored ${repository}:${ref} as ${digest}, not ${manifest.digest}; the registry rewrote the manifest`,
      );
    }
    const subject = header(res.headers, 'oci-subject')?.trim();
    return subject ? { subject } : {};
  }

  // ---- referrers -------------------------------------------------------------------------------

  /**
   * `GET /v2/<repository>/referrers/<digest>[?artifactType=]`, every page, following `Link: rel="next"` on
   * this registry's origin only, each page and byte counted against `quota`. Undefined when the registry
   * has no referrers API: 404 (which a registry with one "MUST NOT" answer) or 405, or a first answer that
   * is no referrers index (as oras-go `referrersPageByAPI` checks). `firstPageOnly`: asks whether the API
   * is there, reading one page.
   */
  async listReferrers(
    repository: string,
    digest: Digest,
    o: CallOptions & {
      readonly artifactType?: string;
      readonly quota: ReferrersQuota;
      readonly firstPageOnly?: boolean;
    },
  ): Promise<ReferrersList | undefined> {
    let url: URL | undefined = this.url(`${repository}/referrers/${digest}`);
    if (o.artifactType) url.searchParams.set('artifactType', o.artifactType);
    const descriptors: Descriptor[] = [];
    let filtered = o.artifactType !== undefined;
    for (let page = 0; url; page++) {
      if (o.quota.pages-- <= 0) throw this.tooManyReferrers(repository, digest);
      const res: RegistryResponse = await this.transport.send({
        method: 'GET',
        url,
        headers: { accept: MediaType.OciIndex },
        scopes: [pull(repository)],
        signal: o.signal,
        retry: o.retry,
      });
      if (page === 0 && (res.status === 404 || res.status === 405)) {
        await discard(res.body);
        return undefined;
      }
      if (res.status !== 200) throw await this.transport.errorFrom('GET', res);
      const limit = Math.min(MAX_MANIFEST_BYTES, o.quota.bytes);
      const bytes = await this.transport.read(res, () =>
        readAll(res.body, limit + 1, this.timeouts, `GET ${redactUrl(res.url)}`),
      );
      o.quota.bytes -= bytes.length;
      if (bytes.length > limit) throw this.tooManyReferrers(repository, digest);
      const entries = referrersPage(bytes);
      if (!entries) {
        if (page === 0) return undefined;
        throw this.error(
          'INVALID_ANSWER',
          `${this.registry} answered page ${page + 1} of the referrers of ${repository}@${digest} with something that is not an OCI index`,
          true,
        );
      }
      descriptors.push(...entries);
      filtered &&= (header(res.headers, 'oci-filters-applied') ?? '')
        .split(',')
        .some((f) => f.trim() === 'artifactType');
      url = o.firstPageOnly ? undefined : this.nextPage(header(res.headers, 'link'), url, 'referrers list');
    }
    return { descriptors, filtered };
  }

  private tooManyReferrers(repository: string, digest: Digest): ProtocolError {
    return this.error(
      'TOO_MANY_REFERRERS',
      `${this.registry}/${repository}: listing the referrers of ${digest} exceeded what one import may read of referrers lists; narrow referrerTypes`,
    );
  }

  // ---- blobs -----------------------------------------------------------------------------------

  /** HEAD a blob: its size when the repository has it (-1 when the answer has no length), undefined when not. */
  async headBlob(repository: string, digest: Digest, o: CallOptions = {}): Promise<number | undefined> {
    const res = await this.transport.send({
      method: 'HEAD',
      url: this.url(`${repository}/blobs/${digest}`),
      scopes: [pull(repository)],
      followRedirects: true,
      signal: o.signal,
      retry: o.retry,
    });
    await discard(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.transport.errorFrom('HEAD', res);
    this.sawBlobIn(repository);
    const length = Number(header(res.headers, 'content-length'));
    return Number.isFinite(length) ? length : -1;
  }

  /**
   * GET bytes `start..end` (inclusive) of a blob with a closed `Range` (open ranges are refused by some
   * registries), handing them to `sink` as they arrive (views of the received chunks: no copies). 206
   * with a matching `Content-Range` (and length, when declared) is expected; a 200 means the registry
   * ignores ranges: the wanted bytes are cut out of the full body. A body of the wrong length is an
   * UnexpectedLengthError (temporary: the caller asks again for what it is missing) — after the sink was
   * given what did arrive.
   */
  async getBlobRange(
    repository: string,
    digest: Digest,
    start: number,
    end: number,
    sink: (chunk: Buffer) => void | Promise<void>,
    o: CallOptions = {},
  ): Promise<BlobRange> {
    const want = end - start + 1;
    const res = await this.transport.send({
      method: 'GET',
      url: this.url(`${repository}/blobs/${digest}`),
      scopes: [pull(repository)],
      followRedirects: true,
      // identity: byte offsets must refer to the stored blob, not a CDN's compressed representation
      headers: { range: `bytes=${start}-${end}`, 'accept-encoding': 'identity' },
      signal: o.signal,
      retry: o.retry,
    });
    const where = redactUrl(res.url);
    if (res.status === 206) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range')?.trim() ?? '');
      const declared = header(res.headers, 'content-length');
      if (
        !cr ||
        Number(cr[1]) !== start ||
        Number(cr[2]) !== end ||
        (declared !== undefined && Number(declared) !== want)
      ) {
        await discard(res.body, 0);
        res.body.destroy();
        throw this.error(
          'RANGE_INVALID',
          `${where} answered range bytes=${start}-${end} with Content-Range "${header(res.headers, 'content-range') ?? ''}" and Content-Length ${declared ?? 'none'}; the remote server may not be RFC 7233 compliant`,
          true,
        );
      }
      const length = await this.transport.read(res, () =>
        forEachRange(res.body, 0, want, false, sink, this.timeouts, `GET ${where}`),
      );
      if (length !== want) throw new UnexpectedLengthError(where, want, length, { side: this.side });
      return { rangeHonoured: true };
    }
    if (res.status === 200) {
      const length = await this.transport.read(res, () =>
        forEachRange(res.body, start, want, true, sink, this.timeouts, `GET ${where}`),
      );
      if (length !== want) throw new UnexpectedLengthError(where, want, length, { side: this.side });
      return { rangeHonoured: false };
    }
    throw await this.transport.errorFrom('GET', res);
  }

  // ---- uploads ---------------------------------------------------------------------------------

  /** An upload URL the registry gave us, resolved; only on the registry's own origin (its token goes there). */
  private sessionUrl(location: string, base: URL | string): string {
    const url = new URL(location, base);
    if (url.origin !== this.origin) {
      throw this.error(
        'UNEXPECTED_UPLOAD_LOCATION',
        `${this.registry} answered an upload with Location on another origin (${redactUrl(url)}); uploads only go to the registry itself, whose credentials they carry`,
      );
    }
    return url.toString();
  }

  /**
   * Mounts a blob from another repository of this registry. True when mounted (201); any other answer
   * is "not mounted" (registries differ widely); a session the registry opened instead is cancelled.
   */
  async mountBlob(repository: string, digest: Digest, fromRepository: string, o: CallOptions = {}): Promise<boolean> {
    const { res, url } = await this.postMount(repository, digest, fromRepository, o);
    await discard(res.body);
    if (res.status === 201) {
      this.sawBlobIn(repository);
      return true;
    }
    const location = header(res.headers, 'location');
    if (res.status === 202 && location) await this.cancelUpload(this.sessionUrl(location, url));
    return false;
  }

  /** POST a new upload session (`Content-Length: 0`). */
  async startUpload(repository: string, o: CallOptions = {}): Promise<UploadSession> {
    const url = this.url(`${repository}/blobs/uploads/`);
    // An extra session left by a retried POST costs nothing: registries purge unused sessions.
    const res = await this.transport.expect(
      { method: 'POST', url, scopes: [push(repository)], idempotent: true, signal: o.signal, retry: o.retry },
      202,
    );
    return this.sessionFrom(res, url);
  }

  /**
   * POST a new upload session that asks, in the same request, whether the repository holds the blob: a mount of it
   * from the repository itself (`?mount=<digest>&from=<repository>`, the spec's "Mounting a blob from another
   * repository"). A registry that holds it there links it again and answers 201: `'present'`. One that does not, or
   * that ignores mounts, opens the session (202). Undefined for any other answer (registries differ on mounts): ask
   * with `headBlob` and `startUpload` instead. A HEAD's answer and the POST after it, in one round trip.
   */
  async startUploadUnlessPresent(
    repository: string,
    digest: Digest,
    o: CallOptions = {},
  ): Promise<UploadSession | 'present' | undefined> {
    const { res, url } = await this.postMount(repository, digest, repository, o);
    if (res.status === 201) {
      await discard(res.body);
      this.sawBlobIn(repository);
      return 'present';
    }
    if (res.status !== 202) {
      await discard(res.body);
      return undefined;
    }
    return this.sessionFrom(res, url);
  }

  /** `POST …/blobs/uploads/?mount=<digest>&from=<fromRepository>`: the registry's answer, and where it went. */
  private async postMount(
    repository: string,
    digest: Digest,
    fromRepository: string,
    o: CallOptions,
  ): Promise<{ res: RegistryResponse; url: URL }> {
    const url = this.url(`${repository}/blobs/uploads/`);
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', fromRepository);
    const res = await this.transport.send({
      method: 'POST',
      url,
      // pull on the repository mounted from (the same scope as a plain upload's, when it is the repository itself)
      scopes: fromRepository === repository ? [push(repository)] : [push(repository), pull(fromRepository)],
      idempotent: true,
      signal: o.signal,
      retry: o.retry,
    });
    return { res, url };
  }

  /**
   * Whether this client has seen `repository` hold a blob: a HEAD found one, or a mount from the repository itself
   * did (the 1,000 seen most recently). A copy that has not fetches a small blob while it asks (lib/engine/copy-blob.ts).
   */
  knownToHoldBlobs(repository: string): boolean {
    return this.holding.has(repository);
  }

  /** The least recently seen is forgotten first: a repository seen again moves to the end (a Set keeps insertion order). */
  private sawBlobIn(repository: string): void {
    if (!this.holding.delete(repository) && this.holding.size >= MAX_HOLDING_REMEMBERED)
      this.holding.delete(this.holding.values().next().value!);
    this.holding.add(repository);
  }

  /** The session a 202 to a POST opened (its Location, resolved against the POST's URL). */
  private async sessionFrom(res: RegistryResponse, url: URL): Promise<UploadSession> {
    await discard(res.body);
    const location = header(res.headers, 'location');
    if (!location)
      throw this.error('NO_LOCATION', `${this.registry} started an upload without a Location header`, true);
    const min = Number(header(res.headers, 'oci-chunk-min-length'));
    return {
      location: this.sessionUrl(location, url),
      minChunkLength: Number.isFinite(min) && min > 0 ? min : undefined,
    };
  }

  /**
   * PATCH one chunk at `offset` (a buffer, or bytes streamed as they are read with their length
   * known). Never retried here: if the answer is lost, the registry may have applied the chunk and
   * moved on (distribution then refuses the Location in hand, 404 BLOB_UPLOAD_INVALID, for a status, a PATCH or a
   * DELETE alike, and keeps the session): ask `uploadStatus`. Returns the next Location.
   */
  async patchUpload(
    repository: string,
    location: string,
    offset: number,
    chunk: Buffer | Required<Pick<StreamedBody, 'length' | 'chunks'>>,
    o: CallOptions = {},
  ): Promise<string> {
    return this.patch(
      repository,
      location,
      chunk,
      {
        // inclusive, and without the "bytes " prefix (distribution 3 fails to parse it otherwise)
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      },
      o,
    );
  }

  /**
   * PATCH the rest of a blob as one stream, in chunked transfer encoding and without Content-Range:
   * the upload `docker push` makes, which every registry takes (some refuse several chunks, or large
   * ones with a declared length). Never retried here, as `patchUpload`. Returns the next Location.
   */
  async streamUpload(
    repository: string,
    location: string,
    chunks: AsyncIterable<Buffer>,
    expected: number,
    o: CallOptions = {},
  ): Promise<string> {
    return this.patch(repository, location, { chunks, expected }, {}, o);
  }

  private async patch(
    repository: string,
    location: string,
    body: Buffer | StreamedBody,
    headers: Record<string, string>,
    o: CallOptions,
  ): Promise<string> {
    const url = new URL(this.sessionUrl(location, this.baseUrl));
    const res = await this.transport.expect(
      {
        method: 'PATCH',
        url,
        body,
        scopes: [push(repository)],
        idempotent: false,
        signal: o.signal,
        retry: o.retry,
        headers: { 'content-type': 'application/octet-stream', ...headers },
      },
      202,
      201,
      204,
    );
    await discard(res.body);
    const next = header(res.headers, 'location');
    return next ? this.sessionUrl(next, url) : url.toString();
  }

  /**
   * GET the session status: the number of bytes the registry holds and the Location to continue
   * with, or undefined when the session is gone or refused (then start a new one).
   */
  async uploadStatus(
    repository: string,
    location: string,
    o: CallOptions = {},
  ): Promise<{ location: string; size: number } | undefined> {
    const url = new URL(this.sessionUrl(location, this.baseUrl));
    const res = await this.transport.send({
      method: 'GET',
      url,
      scopes: [push(repository)],
      signal: o.signal,
      retry: o.retry,
    });
    await discard(res.body);
    if (res.status !== 204 && res.status !== 200) return undefined;
    const range = header(res.headers, 'range')
      ?.replace(/^bytes=/, '')
      .trim();
    const m = range ? /^(\d+)-(\d+)$/.exec(range) : null;
    const next = header(res.headers, 'location');
    return {
      location: next ? this.sessionUrl(next, url) : url.toString(),
      // `0-0` is ambiguous (0 or 1 byte): the caller compares with its own count, which is never 1.
      size: m ? Number(m[2]) + 1 : 0,
    };
  }

  /** Final `PUT ?digest=` with an optional last chunk; the registry verifies the digest. */
  async finishUpload(
    repository: string,
    location: string,
    digest: Digest,
    offset: number,
    lastChunk: Buffer | undefined,
    o: CallOptions = {},
  ): Promise<void> {
    const url = new URL(this.sessionUrl(location, this.baseUrl));
    url.searchParams.set('digest', digest);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (lastChunk?.length) headers['content-range'] = `${offset}-${offset + lastChunk.length - 1}`;
    // Not replayed with a chunk: a retry after a lost answer would append it twice.
    const res = await this.transport.expect(
      {
        method: 'PUT',
        url,
        headers,
        body: lastChunk ?? Buffer.alloc(0),
        scopes: [push(repository)],
        idempotent: !lastChunk?.length,
        signal: o.signal,
        retry: o.retry,
      },
      201,
      204,
    );
    await discard(res.body);
  }

  /** Best effort: registries purge abandoned sessions anyway, and some refuse DELETE without a delete scope. */
  async cancelUpload(location: string, o: CallOptions = {}): Promise<void> {
    try {
      const url = new URL(this.sessionUrl(location, this.baseUrl));
      const res = await this.transport.send({
        method: 'DELETE',
        url,
        scopes: [],
        idempotent: false,
        signal: o.signal,
        retry: o.retry,
      });
      await discard(res.body);
    } catch {
      // ignored on purpose
    }
  }

  // ---- tags ------------------------------------------------------------------------------------

  /**
   * Every tag of a repository, following `Link: <…>; rel="next"` pagination on this registry's own
   * origin only, and refusing a list longer than `maxTags` (the caller names its setting) — and one that takes
   * more pages than `maxTags` tags fill at the page size asked for, plus one: a registry answering empty pages
   * with a next link for ever gets ⌈maxTags / pageSize⌉ + 1 requests, then TOO_MANY_TAGS.
   */
  async listTags(
    repository: string,
    o: CallOptions & { readonly maxTags: number; readonly setting?: string; readonly pageSize?: number },
  ): Promise<string[]> {
    const tags: string[] = [];
    const pageSize = o.pageSize ?? 1000;
    const maxPages = Math.ceil(o.maxTags / pageSize) + 1;
    let url: URL | undefined = this.url(`${repository}/tags/list`);
    url.searchParams.set('n', String(pageSize));
    for (let requests = 0; url; requests++) {
      if (requests >= maxPages) {
        throw this.error(
          'TOO_MANY_TAGS',
          `${this.registry}/${repository} pages its tag list past ${maxPages} pages (${tags.length} tags so far, ${pageSize} asked per page): more than ${o.maxTags} tags${o.setting ? ` (${o.setting})` : ''} fill; narrow the rule or raise the limit`,
        );
      }
      const res: RegistryResponse = await this.transport.expect(
        { method: 'GET', url, scopes: [pull(repository)], signal: o.signal, retry: o.retry },
        200,
      );
      const text = await this.transport.read(res, () =>
        readText(res.body, 16 * 1024 * 1024, this.timeouts, `GET ${redactUrl(res.url)}`),
      );
      let page: { tags?: unknown };
      try {
        page = JSON.parse(text) as { tags?: unknown };
      } catch {
        throw this.error(
          'INVALID_ANSWER',
          `${this.registry} answered the tag list of ${repository} with something that is not JSON`,
          true,
        );
      }
      for (const t of Array.isArray(page.tags) ? page.tags : []) if (typeof t === 'string') tags.push(t);
      if (tags.length > o.maxTags) {
        throw this.error(
          'TOO_MANY_TAGS',
          `${this.registry}/${repository} lists more than ${o.maxTags} tags${o.setting ? ` (${o.setting})` : ''}; narrow the rule or raise the limit`,
        );
      }
      url = this.nextPage(header(res.headers, 'link'), url, 'tag list');
    }
    return tags;
  }

  /** The `rel="next"` page of a `Link` header, only on this registry's origin. */
  private nextPage(link: string | undefined, current: URL, what: string): URL | undefined {
    const target = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link ?? '')?.[1];
    if (!target) return undefined;
    const next = new URL(target, current);
    if (next.origin !== this.origin) {
      throw this.error(
        'CROSS_ORIGIN_LINK',
        `${this.registry} paginates its ${what} to another origin (${redactUrl(next)}); only the registry's own pages are followed`,
      );
    }
    return next;
  }
}

/** The descriptors of one referrers API page, or undefined when the body is not a JSON index. */
function referrersPage(bytes: Buffer): readonly Descriptor[] | undefined {
  try {
    const json = JSON.parse(bytes.toString('utf8')) as { manifests?: unknown };
    if (!json || typeof json !== 'object' || !Array.isArray(json.manifests)) return undefined;
  } catch {
    return undefined;
  }
  return parseManifest(manifestFrom(bytes, MediaType.OciIndex)).manifests;
}
