/**
 * Copy one blob into one target repository, in bounded steps.
 *
 * The ladder: the target has it → done; same registry → mount; else copy. A copy reads the source
 * with closed ranged GETs, several ahead of the upload (one connection is capped by distance, many are
 * not), and writes in order with chunked PATCHes, keeping the newest upload Location. It stops after
 * the budget and returns a JSON state; `copyBlob` with that state (any process, any time) carries on:
 * it asks the registry how many bytes the session holds and continues only when that is exactly the
 * saved offset — otherwise (a lost PATCH answer poisons distribution's sessions) it starts the blob
 * again in a new session.
 */
import { createHash, type Hash } from 'node:crypto';
import { ImportError, RegistryError, isTemporary } from '../oci/errors.js';
import type { RegistryClient } from '../oci/registry.js';
import { backoffDelay, DEFAULT_RETRY, sleep } from '../oci/retry.js';
import type { BlobState, EngineEvents, PlannedBlob, StepBudget } from './types.js';

export interface CopyBlobOptions {
  readonly source: RegistryClient;
  readonly sourceRepository: string;
  readonly target: RegistryClient;
  /** Repositories of the target registry that may hold the blob already (mount candidates). */
  readonly mountFrom: readonly string[];
  readonly chunkSize: number;
  /** Ranged GETs in flight ahead of the upload. */
  readonly fetchConcurrency: number;
  /** Shared by the blobs copied at once: ranged GETs of all of them together. */
  readonly fetchSlots?: FetchSlots;
  /** Bytes per ranged GET (default FETCH_PART_SIZE; tests use small ones). */
  readonly fetchPartSize?: number;
  readonly events?: EngineEvents;
  /** Called with the new state after every chunk the registry accepted (persist it: the Location
   * changes with every PATCH, and only the newest one can continue the session). */
  readonly checkpoint?: (state: BlobState) => Promise<void>;
}

/** Attempts per chunk GET (temporary failures: resets, short bodies, 5xx after the transport's own retries). */
const CHUNK_FETCH_ATTEMPTS = 4;
/** New sessions within one step before the step gives up (the queue retries the step later). */
const MAX_SESSION_RESTARTS = 3;

export function initialBlobState(blob: PlannedBlob, repository: string): BlobState {
  return { digest: blob.digest, size: blob.size, repository, done: false, offset: 0, sessions: 0 };
}

export async function copyBlob(state: BlobState, budget: StepBudget, o: CopyBlobOptions): Promise<BlobState> {
  if (state.done) return state;
  const repo = state.repository;
  const finish = (s: BlobState): BlobState => {
    o.events?.onBlobDone?.(s);
    return s;
  };

  // 1. The target may have it already (a previous import, another tag, a step whose answer was lost).
  const existing = await o.target.headBlob(repo, state.digest);
  if (existing !== undefined) {
    if (existing >= 0 && existing !== state.size) {
      throw new ImportError('BLOB_SIZE_MISMATCH', `target ${o.target.registry}/${repo} holds ${state.digest} with ${existing} bytes, the source says ${state.size}`);
    }
    if (state.location) await o.target.cancelUpload(state.location);
    return finish({ ...state, done: true, outcome: state.offset > 0 || state.location ? 'copied' : 'existed', location: undefined });
  }

  // 2. Same registry: mount instead of copying bytes.
  if (!state.location) {
    for (const from of o.mountFrom) {
      if (from !== repo && await o.target.mountBlob(repo, state.digest, from)) {
        return finish({ ...state, done: true, outcome: 'mounted' });
      }
    }
  }

  let s = await resumeOrStart(state, o);
  if (s.location !== state.location) await o.checkpoint?.(s);
  let restarts = 0;
  let chunks = 0;
  // The running digest is only known when this call saw every byte from 0; otherwise the target's
  // own digest check on the final PUT is the verification.
  let hash: Hash | undefined = s.offset === 0 ? createHash('sha256') : undefined;
  const chunkLen = Math.max(o.chunkSize, s.minChunkLength ?? 0);
  const reader = new RangeReader(o, s.digest, s.size, chunkLen, budget);

  try {
    while (true) {
      // Every step makes progress (at least one chunk), however small its budget.
      if (chunks > 0 && (Date.now() >= budget.until || (budget.maxChunks !== undefined && chunks >= budget.maxChunks))) {
        return s;
      }
      const start = s.offset;
      const data = s.size === 0 ? Buffer.alloc(0) : await reader.read(start);
      const last = start + data.length >= s.size;
      try {
        if (last) {
          const computed = hash ? `sha256:${hash.copy().update(data).digest('hex')}` : undefined;
          if (computed && s.digest.startsWith('sha256:') && computed !== s.digest) {
            await o.target.cancelUpload(s.location!);
            throw new ImportError('DIGEST_MISMATCH', `the source served bytes for ${s.digest} that hash to ${computed}`, true);
          }
          await o.target.finishUpload(repo, s.location!, s.digest, start, data);
          reader.release(data);
          o.events?.onBytes?.(data.length);
          return finish({ ...s, done: true, outcome: 'copied', location: undefined, offset: s.size });
        }
        const patched = o.target.patchUpload(repo, s.location!, start, data);
        hash?.update(data); // while the registry takes the chunk in
        const location = await patched;
        reader.release(data);
        s = { ...s, location, offset: start + data.length };
      } catch (err) {
        if (err instanceof ImportError || (err instanceof RegistryError && !isTemporary(err) && !isSessionError(err))) throw err;
        if (++restarts > MAX_SESSION_RESTARTS) throw err;
        // A final PUT whose answer was lost may have completed the blob.
        if (last && await o.target.headBlob(repo, s.digest).catch(() => undefined) === s.size) {
          o.events?.onBytes?.(data.length);
          return finish({ ...s, done: true, outcome: 'copied', location: undefined, offset: s.size });
        }
        // The answer may be lost after the registry applied the chunk: ask, never replay blindly.
        s = await resumeOrStart(s, o, last ? 0 : data.length);
        // (a PATCHed chunk is in the hash already; the last one never is)
        if (s.offset !== start + data.length) hash = s.offset === 0 ? createHash('sha256') : undefined;
        o.events?.onNotice?.(`upload of ${s.digest} ${s.offset === 0 ? 'restarted in a new session' : `resumed at ${s.offset}`} after: ${(err as Error).message}`);
        await sleep(backoffDelay(DEFAULT_RETRY, restarts));
        continue;
      }
      o.events?.onBytes?.(data.length);
      chunks++;
      // Outside the try: a checkpoint that cannot be saved ends the step; the chunk itself succeeded.
      await o.checkpoint?.(s);
    }
  } finally {
    reader.close();
  }
}

function isSessionError(err: RegistryError): boolean {
  return err.status === 404 || err.status === 416 || err.has('BLOB_UPLOAD_INVALID') || err.has('BLOB_UPLOAD_UNKNOWN') || err.has('RANGE_INVALID');
}

/**
 * Continues the saved session when the registry confirms exactly our offset (or exactly our offset
 * plus a chunk whose answer we lost), else starts a new session from byte 0.
 */
async function resumeOrStart(state: BlobState, o: CopyBlobOptions, pendingChunk = 0): Promise<BlobState> {
  if (state.location) {
    const status = await o.target.uploadStatus(state.repository, state.location).catch(() => undefined);
    if (status) {
      // The lost chunk did arrive: carry on after it.
      if (pendingChunk > 0 && status.size === state.offset + pendingChunk) {
        return { ...state, location: status.location, offset: status.size };
      }
      // Exactly our offset (`0-0` reads as 1 byte: ambiguous, and we never send a 1-byte non-final chunk).
      if (state.offset > 0 ? status.size === state.offset : status.size <= 1) {
        return { ...state, location: status.location };
      }
    }
    await o.target.cancelUpload(state.location);
  }
  const session = await o.target.startUpload(state.repository);
  return { ...state, location: session.location, offset: 0, minChunkLength: session.minChunkLength, sessions: state.sessions + 1 };
}

/**
 * Chunk buffers for reuse. A fresh 8 MiB buffer per chunk makes V8 free hundreds of MB of external
 * memory in full collections (slower than the hashing, and the RSS balloons); recycled ones cost
 * nothing. Only buffers whose request finished are given back: nothing else may still read them.
 */
class ChunkPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private retained = 0;

  constructor(private readonly maxBytes: number) {}

  take(size: number): Buffer {
    const ab = this.free.get(size)?.pop();
    if (ab) this.retained -= size;
    return Buffer.from(ab ?? new ArrayBuffer(size));
  }

  /** Gives back the buffer under `data` (a view of a buffer from `take`). */
  give(data: Buffer): void {
    const ab = data.buffer;
    if (!(ab instanceof ArrayBuffer) || this.retained + ab.byteLength > this.maxBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.retained += ab.byteLength;
  }
}

const pool = new ChunkPool(64 * 1024 * 1024);

/**
 * Part buffers shared by every blob an engine copies at once: a slot is one part being fetched, or
 * fetched and not yet uploaded. This bounds memory (and connections) however many blobs run in
 * parallel. A reader takes the slots of a whole chunk at once (so a chunk it started never waits for
 * slots: no deadlock) and is woken when slots free up; a chunk larger than all slots may go alone.
 */
export class FetchSlots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(readonly size: number) {}

  tryAcquire(n: number, wake: () => void): boolean {
    if (this.used === 0 || this.used + n <= this.size) {
      this.used += n;
      this.waiting.delete(wake);
      return true;
    }
    this.waiting.add(wake);
    return false;
  }

  /** Frees `n` slots and wakes every waiting reader — later, never inside the caller (which may be
   * a reader in the middle of moving its position). Whoever finds no room waits again. */
  release(n: number): void {
    if (n === 0) return;
    this.used -= n;
    const woken = [...this.waiting];
    this.waiting.clear();
    for (const wake of woken) queueMicrotask(wake);
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }
}

/** Bytes per ranged GET by default: a chunk is fetched in parts over several connections, so the first chunk of
 * a blob arrives after a part's transfer time, not a whole chunk's, and no connection idles long. */
const FETCH_PART_SIZE = 4 * 1024 * 1024;

interface ChunkFetch {
  readonly buffer: Buffer;
  readonly length: number;
  /** Handed to the caller, who gives the buffer back with `release` once its request succeeded. */
  taken: boolean;
  /** Parts not yet settled; the buffer is reusable only when none is writing into it. */
  pending: number;
  /** Shared fetch slots this chunk holds, one per part (freed when the chunk is dropped). */
  slots: number;
  failed?: unknown;
  readonly done: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
  /** Settles when every part has (successfully or not). */
  readonly settled: Promise<void>;
  settle(): void;
}

/**
 * Ranged reads of one blob ahead of the position being uploaded: up to `fetchConcurrency` part GETs
 * at once, starting with the parts of the chunk needed first and widening as parts complete (a slow
 * start: on a saturated machine all parts at once would delay the first chunk). Each part lands in
 * its slice of a pooled chunk buffer. Memory: the chunk being uploaded plus `fetchConcurrency` parts
 * ahead (rounded up to whole chunks).
 */
class RangeReader {
  private readonly chunks = new Map<number, ChunkFetch>();
  private readonly partSize: number;
  private inFlight = 0;
  private limit: number;
  /** Start of the chunk grid: chunks are `chunkSize` apart from here. */
  private base = 0;
  /** Offset of the next part to fetch. */
  private next = 0;
  /** Start of the chunk being read or uploaded. */
  private cursor = 0;
  private closed = false;
  /** A `read` waiting for its chunk to start. */
  private awaited?: { start: number; resolve(c: ChunkFetch): void };
  private warnedNoRange = false;

  /** `read` calls so far, and the average time between them (how long a chunk's upload takes). */
  private reads = 0;
  private lastRead = 0;
  private readInterval?: number;

  constructor(
    private readonly o: CopyBlobOptions,
    private readonly digest: BlobState['digest'],
    private readonly size: number,
    private readonly chunkSize: number,
    /** Chunks the step will not upload are not fetched (a step ends at its budget). */
    private readonly budget: StepBudget,
  ) {
    this.partSize = Math.min(chunkSize, o.fetchPartSize ?? FETCH_PART_SIZE);
    this.limit = Math.min(o.fetchConcurrency, Math.ceil(chunkSize / this.partSize));
  }

  async read(start: number): Promise<Buffer> {
    const now = Date.now();
    if (this.reads++ > 0) this.readInterval = this.readInterval === undefined ? now - this.lastRead : 0.8 * this.readInterval + 0.2 * (now - this.lastRead);
    this.lastRead = now;
    if (!this.chunks.has(start)) {
      // a new position (the first read, or a session restarted elsewhere): the grid starts here
      for (const k of [...this.chunks.keys()]) this.drop(k);
      this.base = this.next = start;
    }
    for (const k of [...this.chunks.keys()]) if (k < start) this.drop(k);
    this.cursor = start;
    this.fill();
    // no free slot yet (other blobs hold them all): the chunk starts when one frees up
    const chunk = this.chunks.get(start) ?? await new Promise<ChunkFetch>((resolve) => (this.awaited = { start, resolve }));
    chunk.taken = true;
    return chunk.done;
  }

  /** The caller is done with a chunk `read` returned: the request that carried it succeeded. */
  release(data: Buffer): void {
    pool.give(data);
  }

  close(): void {
    this.closed = true;
    this.o.fetchSlots?.forget(this.wake);
    for (const k of [...this.chunks.keys()]) this.drop(k);
  }

  private readonly wake = (): void => this.fill();

  /** Forgets a chunk; its buffer goes back to the pool once no part writes into it (unless the caller has it). */
  private drop(k: number): void {
    const c = this.chunks.get(k)!;
    this.chunks.delete(k);
    this.o.fetchSlots?.release(c.slots);
    if (!c.taken) void c.settled.then(() => pool.give(c.buffer));
  }

  /** Starts part GETs while there is room: in flight < limit, and no further ahead than the window. */
  private fill(): void {
    const windowEnd = Math.min(this.size, this.cursor + this.chunkSize + this.o.fetchConcurrency * this.partSize);
    while (!this.closed && this.inFlight < this.limit && this.next < windowEnd) {
      const chunkStart = this.base + Math.floor((this.next - this.base) / this.chunkSize) * this.chunkSize;
      let chunk = this.chunks.get(chunkStart);
      if (!chunk) {
        if (!this.wanted(chunkStart)) return;
        const parts = Math.ceil(Math.min(this.chunkSize, this.size - chunkStart) / this.partSize);
        if (this.o.fetchSlots && !this.o.fetchSlots.tryAcquire(parts, this.wake)) return;
        chunk = this.newChunk(chunkStart);
        if (this.o.fetchSlots) chunk.slots = parts;
      }
      const start = this.next;
      const end = Math.min(start + this.partSize, chunkStart + chunk.length);
      this.next = end;
      this.inFlight++;
      void this.fetch(start, end - 1, chunk.buffer.subarray(start - chunkStart, end - chunkStart)).then(
        () => {
          if (--chunk.pending === 0 && chunk.failed === undefined) chunk.resolve(chunk.buffer.subarray(0, chunk.length));
        },
        (err: unknown) => {
          chunk.pending--;
          chunk.failed ??= err;
          chunk.reject(err);
        },
      ).finally(() => {
        if (chunk.pending === 0) chunk.settle();
        this.inFlight--;
        this.limit = Math.min(this.o.fetchConcurrency, this.limit + 1);
        this.fill();
      });
    }
  }

  /**
   * Whether the step will still upload the chunk at `chunkStart`: the one it reads now always; one
   * `d` chunks ahead only if the step may take that many more (`maxChunks`) and, at the pace of the
   * uploads so far, would start it before its budget ends. The rest would be fetched for nothing.
   */
  private wanted(chunkStart: number): boolean {
    const d = Math.round((chunkStart - this.cursor) / this.chunkSize);
    if (d <= 0) return true;
    if (this.budget.maxChunks !== undefined && this.reads + d > this.budget.maxChunks) return false;
    return Math.max(Date.now(), this.lastRead + d * (this.readInterval ?? 0)) < this.budget.until;
  }

  private newChunk(chunkStart: number): ChunkFetch {
    const length = Math.min(this.chunkSize, this.size - chunkStart);
    let resolve!: (b: Buffer) => void;
    let reject!: (e: unknown) => void;
    let settle!: () => void;
    const done = new Promise<Buffer>((res, rej) => ((resolve = res), (reject = rej)));
    done.catch(() => undefined); // observed when read; a chunk dropped by close() must not crash the process
    const settled = new Promise<void>((res) => (settle = res));
    const chunk: ChunkFetch = {
      buffer: pool.take(this.chunkSize), length, taken: false, slots: 0, pending: Math.ceil(length / this.partSize), done, resolve, reject, settled, settle,
    };
    this.chunks.set(chunkStart, chunk);
    if (this.awaited?.start === chunkStart) {
      this.awaited.resolve(chunk);
      this.awaited = undefined;
    }
    return chunk;
  }

  private async fetch(start: number, end: number, into: Buffer): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { rangeHonoured } = await this.o.source.getBlobRange(this.o.sourceRepository, this.digest, start, end, into);
        if (!rangeHonoured && !this.warnedNoRange) {
          this.warnedNoRange = true;
          this.o.events?.onNotice?.(`${this.o.source.registry} ignores Range for ${this.digest}: each chunk streams the blob from its start`);
        }
        return;
      } catch (err) {
        if (!isTemporary(err) || attempt >= CHUNK_FETCH_ATTEMPTS) throw err;
        await sleep(backoffDelay(DEFAULT_RETRY, attempt));
      }
    }
  }
}
