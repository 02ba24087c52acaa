/**
 * JSON documents with ETags: the only storage primitive the job store needs. Optimistic concurrency
 * (If-Match / If-None-Match) is what makes parallel blob steps and their fan-in safe without locks.
 * Two implementations: Azure Blob Storage (Azurite locally) and memory (unit tests).
 */
import { RestError, type ContainerClient } from '@azure/storage-blob';
import { OciImportError } from '../errors.js';
import { isTransientForeignError } from '../http-policy.js';

export interface Doc<T> {
  readonly value: T;
  readonly etag: string;
}

export type WriteCondition = { readonly ifMatch: string } | { readonly ifNoneExists: true } | undefined;

/** One page of names under a prefix, in lexicographic order, each with its metadata. */
export interface Listing {
  readonly entries: readonly { readonly name: string; readonly metadata: Readonly<Record<string, string>> }[];
  /** Where the next page starts (opaque); absent on the last page. */
  readonly next?: string;
}

export interface Documents {
  get<T>(path: string): Promise<Doc<T> | undefined>;
  /**
   * Returns the new ETag, or undefined when the condition failed (someone else wrote first). `metadata`
   * (lower-case names, short ASCII values) comes back with `list`, without reading the document.
   */
  put(
    path: string,
    value: unknown,
    condition?: WriteCondition,
    metadata?: Record<string, string>,
  ): Promise<string | undefined>;
  /** Removes a document; absent is fine. */
  delete(path: string): Promise<void>;
  /** One page of the documents under `prefix`, from `marker` (a `next` of an earlier page) on. */
  list(prefix: string, options: { readonly marker?: string; readonly maxPageSize: number }): Promise<Listing>;
}

/** The names of every document under `prefix`, page after page (a job's folder: a handful of names). */
export async function listNames(docs: Documents, prefix: string): Promise<string[]> {
  const names: string[] = [];
  let marker: string | undefined;
  do {
    const page = await docs.list(prefix, { marker, maxPageSize: 1000 });
    names.push(...page.entries.map((e) => e.name));
    marker = page.next;
  } while (marker);
  return names;
}

/**
 * A storage operation failed: the job store's side. Worth another try (the queue retries the step) when its kind is
 * known to be temporary — a 408/429/5xx, a connection reset or refused (lib/http-policy.ts); a 403 or a bug is not.
 */
function storageError(op: string, path: string, err: unknown): OciImportError {
  const status = err instanceof RestError ? err.statusCode : undefined;
  return new OciImportError(
    'STORAGE_ERROR',
    `job storage ${op} ${path} failed${status ? ` (${status})` : ''}: ${(err as Error).message?.split('\n')[0] ?? String(err)}`,
    { temporary: isTransientForeignError(err), side: 'storage', cause: err },
  );
}

export class BlobDocuments implements Documents {
  private ready: Promise<unknown> | undefined;

  constructor(private readonly container: ContainerClient) {}

  private ensure(): Promise<unknown> {
    this.ready ??= this.container.createIfNotExists().catch((err: unknown) => {
      this.ready = undefined;
      throw storageError('create container', this.container.containerName, err);
    });
    return this.ready;
  }

  async get<T>(path: string): Promise<Doc<T> | undefined> {
    await this.ensure();
    try {
      // One GET gives the body and the ETag of exactly that body.
      const res = await this.container.getBlockBlobClient(path).download(0);
      const body = await streamToBuffer(res.readableStreamBody!);
      return { value: JSON.parse(body.toString('utf8')) as T, etag: res.etag! };
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return undefined;
      throw storageError('read', path, err);
    }
  }

  async delete(path: string): Promise<void> {
    await this.ensure();
    try {
      await this.container.getBlockBlobClient(path).deleteIfExists();
    } catch (err) {
      throw storageError('delete', path, err);
    }
  }

  async put(
    path: string,
    value: unknown,
    condition?: WriteCondition,
    metadata?: Record<string, string>,
  ): Promise<string | undefined> {
    await this.ensure();
    const body = Buffer.from(JSON.stringify(value));
    const conditions = !condition
      ? undefined
      : 'ifMatch' in condition
        ? { ifMatch: condition.ifMatch }
        : { ifNoneMatch: '*' };
    try {
      const res = await this.container.getBlockBlobClient(path).uploadData(body, {
        conditions,
        metadata,
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
      return res.etag!;
    } catch (err) {
      if (err instanceof RestError && (err.statusCode === 412 || err.statusCode === 409)) return undefined;
      throw storageError('write', path, err);
    }
  }

  /** One List Blobs call (a billed list operation, up to 5,000 names), metadata included. */
  async list(prefix: string, options: { readonly marker?: string; readonly maxPageSize: number }): Promise<Listing> {
    await this.ensure();
    try {
      const pages = this.container
        .listBlobsFlat({ prefix, includeMetadata: true })
        .byPage({ continuationToken: options.marker, maxPageSize: options.maxPageSize });
      const page = (await pages.next()).value as
        | { segment: { blobItems: { name: string; metadata?: Record<string, string> }[] }; continuationToken?: string }
        | undefined;
      const entries = (page?.segment.blobItems ?? []).map((b) => ({ name: b.name, metadata: b.metadata ?? {} }));
      return { entries, ...(page?.continuationToken ? { next: page.continuationToken } : {}) };
    } catch (err) {
      throw storageError('list', prefix, err);
    }
  }
}

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

export class MemoryDocuments implements Documents {
  private readonly docs = new Map<string, { text: string; etag: string; metadata: Record<string, string> }>();
  private version = 0;
  /** Test helper: operations by kind (what a storage bill counts). */
  readonly ops = { get: 0, put: 0, delete: 0, list: 0 };

  async get<T>(path: string): Promise<Doc<T> | undefined> {
    this.ops.get++;
    const d = this.docs.get(path);
    return d ? { value: JSON.parse(d.text) as T, etag: d.etag } : undefined;
  }

  async put(
    path: string,
    value: unknown,
    condition?: WriteCondition,
    metadata: Record<string, string> = {},
  ): Promise<string | undefined> {
    this.ops.put++;
    const current = this.docs.get(path);
    if (condition && 'ifMatch' in condition && current?.etag !== condition.ifMatch) return undefined;
    if (condition && 'ifNoneExists' in condition && current) return undefined;
    const etag = `"${++this.version}"`;
    this.docs.set(path, { text: JSON.stringify(value), etag, metadata: { ...metadata } });
    return etag;
  }

  async delete(path: string): Promise<void> {
    this.ops.delete++;
    this.docs.delete(path);
  }

  /** As Azure lists: names in order; the marker is where the next page starts. */
  async list(prefix: string, options: { readonly marker?: string; readonly maxPageSize: number }): Promise<Listing> {
    this.ops.list++;
    const names = [...this.docs.keys()]
      .filter((k) => k.startsWith(prefix) && (options.marker === undefined || k >= options.marker))
      .sort();
    const page = names.slice(0, options.maxPageSize);
    const next = names[options.maxPageSize];
    return {
      entries: page.map((name) => ({ name, metadata: { ...this.docs.get(name)!.metadata } })),
      ...(next ? { next } : {}),
    };
  }

  /** Test helper: every stored path and its text. */
  dump(): Map<string, string> {
    return new Map([...this.docs].map(([k, v]) => [k, v.text]));
  }
}
