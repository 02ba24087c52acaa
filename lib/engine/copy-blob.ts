/**
 * Copy one blob into one target repository, in bounded steps.
 *
 * The ladder: the target has it → done; same registry → mount; else copy. A copy reads the source
 * with closed ranged GETs, several ahead of the upload (one connection is capped by distance, many are
 * not), and streams them in order into PATCHes of CHUNK_SIZE bytes (or, unbounded, one PATCH for the
 * rest of the blob, as `docker push`), keeping the newest upload Location. It stops after
 * the budget and returns a JSON state; `copyBlob` with that state (any process, any time) carries on:
 * it asks the registry how many bytes the session holds and continues only when that is exactly the
 * saved offset — otherwise (a lost PATCH answer poisons distribution's sessions) it starts the blob
 * again in a new session.
 */
import { createHash, type Hash } from 'node:crypto';
import { ImportError, RegistryError, isTemporary } from '../oci/errors.js';
import type { RegistryClient } from '../oci/registry.js';
import { backoffDelay, DEFAULT_RETRY, sleep } from '../oci/retry.js';
import { PartReader, type FetchSlots } from './part-reader.js';
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
  let segments = 0;
  // The running digest is only known when this call saw every byte from 0; otherwise the target's
  // own digest check on the final PUT is the verification.
  let hash: Hash | undefined = s.offset === 0 ? createHash('sha256') : undefined;
  // The upload's pace in this step (bytes the registry accepted, since the first request started):
  // parts the step would not get to upload before its budget ends are not fetched.
  const began = Date.now();
  const beganAt = s.offset;
  let segmentEnd = s.offset;
  let segmentLength = Infinity;
  const wanted = (offset: number): boolean => {
    const ahead = Number.isFinite(segmentLength) ? Math.floor((offset - segmentEnd) / segmentLength) + 1 : 1;
    if (budget.maxChunks !== undefined && segments + 1 + ahead > budget.maxChunks) return false;
    const done = s.offset - beganAt;
    const pace = done > 0 ? done / Math.max(1, Date.now() - began) : undefined;
    return (pace === undefined ? Date.now() : Date.now() + (offset - s.offset) / pace) < budget.until;
  };
  const reader = new PartReader({
    source: o.source, repository: o.sourceRepository, digest: s.digest, size: s.size, concurrency: o.fetchConcurrency,
    partSize: o.fetchPartSize, slots: o.fetchSlots, events: o.events, wanted,
  });

  try {
    while (true) {
      // Every step makes progress (at least one request), however small its budget.
      if (segments > 0 && (Date.now() >= budget.until || (budget.maxChunks !== undefined && segments >= budget.maxChunks))) {
        return s;
      }
      const start = s.offset;
      // One PATCH: CHUNK_SIZE bytes (at least the registry's minimum), or unbounded: the rest as one stream.
      segmentLength = Math.max(o.chunkSize, s.minChunkLength ?? 0);
      segmentEnd = Math.min(s.size, start + segmentLength);
      const last = segmentEnd >= s.size;
      reader.segment(start, segmentEnd, segmentLength);
      const first = start >= s.size ? Buffer.alloc(0) : await reader.read(start);
      const whole = start + first.length >= segmentEnd;
      const held: Buffer[] = [];
      let sent = 0;
      try {
        if (whole && last) {
          // The end, in one buffer (a small blob, the tail of a chunked one, or none left after a
          // streamed PATCH): checked, then the final PUT with it.
          const computed = hash ? `sha256:${hash.copy().update(first).digest('hex')}` : undefined;
          if (computed && s.digest.startsWith('sha256:') && computed !== s.digest) {
            await o.target.cancelUpload(s.location!);
            throw new ImportError('DIGEST_MISMATCH', `the source served bytes for ${s.digest} that hash to ${computed}`, true);
          }
          await o.target.finishUpload(repo, s.location!, s.digest, start, first);
          reader.release(first);
          o.events?.onBytes?.(first.length);
          return finish({ ...s, done: true, outcome: 'copied', location: undefined, offset: s.size });
        }
        let location: string;
        if (whole) {
          const patched = o.target.patchUpload(repo, s.location!, start, first);
          hash?.update(first); // while the registry takes the chunk in
          location = await patched;
          reader.release(first);
          sent = first.length;
          o.events?.onBytes?.(first.length);
        } else {
          // Several parts: streamed as they arrive, hashed as they go.
          const body = streamParts(reader, start, first, segmentEnd, held, (part) => {
            hash?.update(part);
            sent += part.length;
            o.events?.onBytes?.(part.length);
          });
          location = Number.isFinite(segmentLength)
            ? await o.target.patchUpload(repo, s.location!, start, { length: segmentEnd - start, chunks: body })
            : await o.target.streamUpload(repo, s.location!, body);
          for (const b of held.splice(0)) reader.release(b);
        }
        s = { ...s, location, offset: segmentEnd };
      } catch (err) {
        if (err instanceof ImportError || (err instanceof RegistryError && !isTemporary(err) && !isSessionError(err))) throw err;
        if (++restarts > MAX_SESSION_RESTARTS) throw err;
        // A final PUT whose answer was lost may have completed the blob.
        if (last && whole && await o.target.headBlob(repo, s.digest).catch(() => undefined) === s.size) {
          o.events?.onBytes?.(first.length);
          return finish({ ...s, done: true, outcome: 'copied', location: undefined, offset: s.size });
        }
        // The answer may be lost after the registry applied the chunk: ask, never replay blindly.
        const sessions = s.sessions;
        s = await resumeOrStart(s, o, whole && last ? 0 : segmentEnd - start);
        // (sent bytes are in the hash already; the final buffer never is)
        if (s.offset !== segmentEnd) {
          hash = s.offset === 0 ? createHash('sha256') : undefined;
          o.events?.onBytes?.(-sent);
        }
        o.events?.onNotice?.(`upload of ${s.digest} ${s.sessions !== sessions ? 'restarted in a new session' : `resumed at ${s.offset}`} after: ${(err as Error).message}`);
        await sleep(backoffDelay(DEFAULT_RETRY, restarts));
        continue;
      }
      segments++;
      // Outside the try: a checkpoint that cannot be saved ends the step; the chunk itself succeeded.
      await o.checkpoint?.(s);
    }
  } finally {
    reader.close();
  }
}

/**
 * The parts of `[first's start, end)` in order, `first` already read. Each buffer is handed to the
 * request's writer, which pulls the next one only when the socket took the previous one whole (undici
 * waits for 'drain', and a part is larger than the socket's buffer): every part but the last two
 * yielded is on its way and is reused at once; those two stay in `held` for the caller to release
 * when the request has ended (or to drop on failure: a dead socket may still hold them).
 */
async function* streamParts(reader: PartReader, start: number, first: Buffer, end: number, held: Buffer[], onPart: (b: Buffer) => void): AsyncGenerator<Buffer> {
  let part = first;
  for (let at = start + first.length; ; at += part.length) {
    onPart(part);
    held.push(part);
    while (held.length > 2) reader.release(held.shift()!);
    yield part;
    if (at >= end) return;
    part = await reader.read(at);
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
