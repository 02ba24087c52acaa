/**
 * A client for one registry host: manifests, blobs and upload sessions as the distribution spec
 * defines them, each method one protocol step. No policy lives here (what to skip, when to resume):
 * that is the copy engine's job.
 */
import { ChallengeAuthenticator, type Authenticator, type Credentials } from './auth.js';
import type { Digest } from './digest.js';
import { ImportError, RegistryError, TransportError, UnexpectedLengthError, redactUrl } from './errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, manifestFrom, resolveMediaType, type RawManifest } from './manifest.js';
import { Transport, errorFromResponse, header, readText, type RegistryResponse, type StreamedBody, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends Omit<TransportOptions, 'authenticator'> {
  /** API host, `host[:port]` (already normalised: docker.io → registry-1.docker.io). */
  readonly registry: string;
  /** Plain HTTP instead of TLS (only for hosts listed as insecure). */
  readonly insecure?: boolean;
  readonly credentials?: Credentials;
  /** Replaces the challenge-driven authenticator (e.g. the Entra ID → ACR exchange). */
  readonly authenticator?: Authenticator;
}

export interface ManifestHead {
  readonly digest?: Digest;
  readonly mediaType?: string;
  readonly size?: number;
}

export interface UploadSession {
  /** Absolute URL of the session; replaced after every PATCH (it carries the registry's state token). */
  readonly location: string;
  /** `OCI-Chunk-Min-Length`: non-final chunks must be at least this long. */
  readonly minChunkLength?: number;
}

export interface BlobRange {
  /** The bytes asked for, exactly (`end - start + 1` long). */
  readonly data: Buffer;
  /** False when the registry ignored `Range` and sent the whole blob (we cut the part out). */
  readonly rangeHonoured: boolean;
}

const pull = (repo: string) => `repository:${repo}:pull`;
const push = (repo: string) => `repository:${repo}:pull,push`;

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly transport: Transport;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.baseUrl = `${options.insecure ? 'http' : 'https'}://${options.registry}`;
    const authenticator = options.authenticator ?? new ChallengeAuthenticator(
      options.registry,
      options.credentials,
      // token requests go through the same transport (retries, dispatcher), minus the auth layer
      (url, authorization) => this.transport.fetchText(url, authorization),
      options.insecure ?? false,
    );
    this.transport = new Transport({ ...options, authenticator });
  }

  private url(path: string): URL {
    return new URL(`/v2/${path}`, this.baseUrl);
  }

  /** `GET /v2/`: checks the registry answers and our credentials work (a 401 after auth is an error). */
  async ping(): Promise<void> {
    const res = await this.transport.expect({ method: 'GET', url: this.url(''), scopes: [] }, 200);
    await res.body.dump();
  }

  // ---- manifests -------------------------------------------------------------------------------

  /** HEAD a manifest: digest and media type without spending a pull (Docker Hub counts GETs only). */
  async headManifest(repo: string, ref: string): Promise<ManifestHead | undefined> {
    const res = await this.transport.send({
      method: 'HEAD', url: this.url(`${repo}/manifests/${ref}`), headers: { accept: MANIFEST_ACCEPT }, scopes: [pull(repo)],
    });
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.status !== 200) throw await errorFromResponse('HEAD', res);
    await res.body.dump();
    const digest = header(res.headers, 'docker-content-digest') as Digest | undefined;
    const length = Number(header(res.headers, 'content-length'));
    return {
      digest,
      mediaType: header(res.headers, 'content-type')?.split(';')[0]?.trim(),
      size: Number.isFinite(length) ? length : undefined,
    };
  }

  /** GET a manifest's exact bytes; when `ref` is a digest, the bytes must hash to it. */
  async getManifest(repo: string, ref: string): Promise<RawManifest> {
    const res = await this.transport.expect({
      method: 'GET', url: this.url(`${repo}/manifests/${ref}`), headers: { accept: MANIFEST_ACCEPT }, scopes: [pull(repo)],
    }, 200);
    const declared = Number(header(res.headers, 'content-length'));
    if (declared > MAX_MANIFEST_BYTES) {
      await res.body.dump().catch(() => undefined);
      throw new ImportError('MANIFEST_TOO_LARGE', `manifest ${repo}:${ref} on ${this.registry} is ${declared} bytes; registries accept at most ${MAX_MANIFEST_BYTES}`);
    }
    const bytes = await readAll(res, MAX_MANIFEST_BYTES + 1);
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new ImportError('MANIFEST_TOO_LARGE', `manifest ${repo}:${ref} on ${this.registry} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    const raw = manifestFrom(bytes, resolveMediaType(header(res.headers, 'content-type'), bytes));
    if (ref.includes(':') && raw.digest !== ref) {
      throw new ImportError('DIGEST_MISMATCH', `${this.registry}/${repo}@${ref} served a manifest whose digest is ${raw.digest}`);
    }
    return raw;
  }

  /** PUT exact bytes under a tag or digest with their own media type; returns the registry's digest. */
  async putManifest(repo: string, ref: string, manifest: RawManifest): Promise<void> {
    const res = await this.transport.expect({
      method: 'PUT', url: this.url(`${repo}/manifests/${ref}`), headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes, scopes: [push(repo)],
    }, 200, 201, 202);
    await res.body.dump();
    const digest = header(res.headers, 'docker-content-digest');
    if (digest && digest !== manifest.digest) {
      throw new ImportError('DIGEST_MISMATCH', `${this.registry} stored ${repo}:${ref} as ${digest}, not ${manifest.digest}; the registry rewrote the manifest`);
    }
  }

  // ---- blobs -----------------------------------------------------------------------------------

  /** HEAD a blob: its size when the repository has it, undefined when not. */
  async headBlob(repo: string, digest: Digest): Promise<number | undefined> {
    const res = await this.transport.send({
      method: 'HEAD', url: this.url(`${repo}/blobs/${digest}`), scopes: [pull(repo)], followRedirects: true,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await errorFromResponse('HEAD', res);
    const length = Number(header(res.headers, 'content-length'));
    return Number.isFinite(length) ? length : -1;
  }

  /**
   * GET bytes `start..end` (inclusive) of a blob with a closed `Range` (open ranges are refused by some
   * registries). 206 with a matching `Content-Range` is expected; a 200 means the registry ignores
   * ranges: the wanted part is cut out of the full body. A body of the wrong length is an
   * UnexpectedLengthError (temporary: the caller asks again). The bytes land in `into` when given (at
   * least `end - start + 1` long: the caller reuses its buffers), else in a new Buffer.
   */
  async getBlobRange(repo: string, digest: Digest, start: number, end: number, into?: Buffer): Promise<BlobRange> {
    const want = end - start + 1;
    if (into && into.length < want) throw new RangeError(`buffer of ${into.length} bytes for a range of ${want}`);
    const res = await this.transport.send({
      method: 'GET', url: this.url(`${repo}/blobs/${digest}`), scopes: [pull(repo)], followRedirects: true,
      // identity: byte offsets must refer to the stored blob, not a CDN's compressed representation
      headers: { range: `bytes=${start}-${end}`, 'accept-encoding': 'identity' },
    });
    const where = redactUrl(res.url);
    if (res.status === 206) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range')?.trim() ?? '');
      if (!cr || Number(cr[1]) !== start || Number(cr[2]) !== end) {
        await res.body.dump().catch(() => undefined);
        throw new ImportError('RANGE_INVALID', `${where} answered range bytes=${start}-${end} with Content-Range "${header(res.headers, 'content-range') ?? ''}"; the remote server may not be RFC 7233 compliant`, true);
      }
      const data = into ? into.subarray(0, want) : Buffer.allocUnsafe(want);
      const length = await readBody(res, () => readInto(res, data, 0, false));
      if (length !== want) throw new UnexpectedLengthError(where, want, length);
      return { data, rangeHonoured: true };
    }
    if (res.status === 200) {
      const data = into ? into.subarray(0, want) : Buffer.allocUnsafe(want);
      const length = await readBody(res, () => readInto(res, data, start, true));
      if (length !== want) throw new UnexpectedLengthError(where, want, length);
      return { data, rangeHonoured: false };
    }
    throw await errorFromResponse('GET', res);
  }

  // ---- uploads ---------------------------------------------------------------------------------

  /**
   * Mounts a blob from another repository of this registry. True when mounted (201); any other answer
   * is "not mounted" (registries differ widely); a session the registry opened instead is cancelled.
   */
  async mountBlob(repo: string, digest: Digest, fromRepo: string): Promise<boolean> {
    const url = this.url(`${repo}/blobs/uploads/`);
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', fromRepo);
    const res = await this.transport.send({ method: 'POST', url, scopes: [push(repo), pull(fromRepo)], idempotent: true });
    await res.body.dump();
    if (res.status === 201) return true;
    const location = header(res.headers, 'location');
    if (res.status === 202 && location) await this.cancelUpload(new URL(location, url).toString());
    return false;
  }

  /** POST a new upload session (`Content-Length: 0`). */
  async startUpload(repo: string): Promise<UploadSession> {
    const url = this.url(`${repo}/blobs/uploads/`);
    // An extra session left by a retried POST costs nothing: registries purge unused sessions.
    const res = await this.transport.expect({ method: 'POST', url, scopes: [push(repo)], idempotent: true }, 202);
    await res.body.dump();
    const location = header(res.headers, 'location');
    if (!location) throw new RegistryError('POST', redactUrl(url), 202, [{ code: 'NO_LOCATION', message: 'upload started without a Location header' }]);
    const min = Number(header(res.headers, 'oci-chunk-min-length'));
    return { location: new URL(location, url).toString(), minChunkLength: Number.isFinite(min) && min > 0 ? min : undefined };
  }

  /**
   * PATCH one chunk at `offset` (a buffer, or bytes streamed as they are read with their length
   * known). Never retried here: if the answer is lost, the registry may have applied the chunk and
   * moved on (distribution then poisons the session): ask `uploadStatus`. Returns the next Location.
   */
  async patchUpload(repo: string, location: string, offset: number, chunk: Buffer | Required<StreamedBody>): Promise<string> {
    return this.patch(repo, location, chunk, {
      // inclusive, and without the "bytes " prefix (distribution 3 fails to parse it otherwise)
      'content-range': `${offset}-${offset + chunk.length - 1}`,
    });
  }

  /**
   * PATCH the rest of a blob as one stream, in chunked transfer encoding and without Content-Range:
   * the upload `docker push` makes, which every registry takes (some refuse several chunks, or large
   * ones with a declared length). Never retried here, as `patchUpload`. Returns the next Location.
   */
  async streamUpload(repo: string, location: string, chunks: AsyncIterable<Buffer>): Promise<string> {
    return this.patch(repo, location, { chunks }, {});
  }

  private async patch(repo: string, location: string, body: Buffer | StreamedBody, headers: Record<string, string>): Promise<string> {
    const url = new URL(location);
    const res = await this.transport.expect({
      method: 'PATCH', url, body, scopes: [push(repo)], idempotent: false,
      headers: { 'content-type': 'application/octet-stream', ...headers },
    }, 202, 201, 204);
    await res.body.dump();
    const next = header(res.headers, 'location');
    return next ? new URL(next, url).toString() : location;
  }

  /**
   * GET the session status: the number of bytes the registry holds and the Location to continue
   * with, or undefined when the session is gone or refused (then start a new one).
   */
  async uploadStatus(repo: string, location: string): Promise<{ location: string; size: number } | undefined> {
    const url = new URL(location);
    const res = await this.transport.send({ method: 'GET', url, scopes: [push(repo)] });
    await res.body.dump();
    if (res.status !== 204 && res.status !== 200) return undefined;
    const range = header(res.headers, 'range')?.replace(/^bytes=/, '').trim();
    const m = range ? /^(\d+)-(\d+)$/.exec(range) : null;
    const next = header(res.headers, 'location');
    return {
      location: next ? new URL(next, url).toString() : location,
      // `0-0` is ambiguous (0 or 1 byte): the caller compares with its own count, which is never 1.
      size: m ? Number(m[2]) + 1 : 0,
    };
  }

  /** Final `PUT ?digest=` with an optional last chunk; the registry verifies the digest. */
  async finishUpload(repo: string, location: string, digest: Digest, offset: number, lastChunk?: Buffer): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (lastChunk?.length) headers['content-range'] = `${offset}-${offset + lastChunk.length - 1}`;
    // Not replayed: a retry after a lost answer would append the chunk twice.
    const res = await this.transport.expect({
      method: 'PUT', url, headers, body: lastChunk ?? Buffer.alloc(0), scopes: [push(repo)], idempotent: !lastChunk?.length,
    }, 201, 204);
    await res.body.dump();
  }

  /** Best effort: registries purge abandoned sessions anyway, and some refuse DELETE without a delete scope. */
  async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.transport.send({ method: 'DELETE', url: new URL(location), scopes: [], idempotent: false });
      await res.body.dump();
    } catch {
      // ignored on purpose
    }
  }

  // ---- tags ------------------------------------------------------------------------------------

  /** Every tag of a repository, following `Link: <…>; rel="next"` pagination. */
  async listTags(repo: string, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    let url: URL | undefined = this.url(`${repo}/tags/list`);
    url.searchParams.set('n', String(pageSize));
    while (url) {
      const res: RegistryResponse = await this.transport.expect({ method: 'GET', url, scopes: [pull(repo)] }, 200);
      const page = JSON.parse(await readText(res.body, 16 * 1024 * 1024)) as { tags?: string[] | null };
      tags.push(...(page.tags ?? []));
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '');
      url = link?.[1] ? new URL(link[1], url) : undefined;
    }
    return tags;
  }
}

/** A connection that breaks while the body streams is a transport failure (temporary), like one before it. */
async function readBody<T>(res: RegistryResponse, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new TransportError('GET', redactUrl(res.url), err);
  }
}

async function readAll(res: RegistryResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.length;
    if (size >= limit) {
      res.body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks, size);
}

/**
 * Copies body bytes `skip .. skip + out.length` into `out` as they arrive (no intermediate copies) and
 * returns how many body bytes from `skip` on it saw: `out.length` when the body fits exactly, less when
 * it is short, more when it is long (it stops at the first byte too many). With `dropRest` it stops as
 * soon as `out` is full and drops the connection's remainder (a full-body answer to a range request):
 * then only a short body shows.
 */
async function readInto(res: RegistryResponse, out: Buffer, skip: number, dropRest: boolean): Promise<number> {
  let pos = 0;
  let filled = 0;
  let extra = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    const from = Math.min(b.length, Math.max(0, skip - pos));
    const n = Math.min(b.length - from, out.length - filled);
    if (n > 0) {
      b.copy(out, filled, from, from + n);
      filled += n;
    }
    extra += b.length - from - n;
    pos += b.length;
    if (filled === out.length && (dropRest || extra > 0)) {
      res.body.destroy();
      break;
    }
  }
  return dropRest ? filled : filled + extra;
}
