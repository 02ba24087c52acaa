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
  const reader = new RangeReader(o, s.digest, s.size, chunkLen);

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
          o.events?.onBytes?.(data.length);
          return finish({ ...s, done: true, outcome: 'copied', location: undefined, offset: s.size });
        }
        const location = await o.target.patchUpload(repo, s.location!, start, data);
        hash?.update(data);
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
        if (s.offset !== start + data.length) hash = s.offset === 0 ? createHash('sha256') : undefined;
        else hash?.update(data);
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
 * Ranged reads of one blob, up to `fetchConcurrency` chunks ahead of the position being uploaded.
 * Memory is bounded by `fetchConcurrency × chunkSize`.
 */
class RangeReader {
  private readonly ahead = new Map<number, Promise<Buffer>>();
  private warnedNoRange = false;

  constructor(
    private readonly o: CopyBlobOptions,
    private readonly digest: BlobState['digest'],
    private readonly size: number,
    private readonly chunkSize: number,
  ) {}

  async read(start: number): Promise<Buffer> {
    for (let i = 0, at = start; i < this.o.fetchConcurrency && at < this.size; i++, at += this.chunkSize) {
      if (!this.ahead.has(at)) {
        const p = this.fetch(at);
        p.catch(() => undefined); // observed when awaited; a prefetch dropped by close() must not crash the process
        this.ahead.set(at, p);
      }
    }
    for (const k of this.ahead.keys()) if (k < start) this.ahead.delete(k);
    const p = this.ahead.get(start)!;
    this.ahead.delete(start);
    return p;
  }

  close(): void {
    this.ahead.clear();
  }

  private async fetch(start: number): Promise<Buffer> {
    const end = Math.min(start + this.chunkSize, this.size) - 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const { data, rangeHonoured } = await this.o.source.getBlobRange(this.o.sourceRepository, this.digest, start, end);
        if (!rangeHonoured && !this.warnedNoRange) {
          this.warnedNoRange = true;
          this.o.events?.onNotice?.(`${this.o.source.registry} ignores Range for ${this.digest}: each chunk streams the blob from its start`);
        }
        return data;
      } catch (err) {
        if (!isTemporary(err) || attempt >= CHUNK_FETCH_ATTEMPTS) throw err;
        await sleep(backoffDelay(DEFAULT_RETRY, attempt));
      }
    }
  }
}
