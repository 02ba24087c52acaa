/**
 * Copy one blob into one target repository, in bounded steps.
 *
 * 1. The ladder (`presentOrMounted`): the target has it → done; another repository of the target
 *    registry has it → mount; else upload. A small blob going into a repository new to it skips the HEAD: the POST
 *    that opens its upload asks instead, while its bytes are read (`askWithUpload`).
 * 2. The upload, a state machine over `BlobState` (types.ts): `pending` → `uploading{location, offset}`
 *    → `done`. Each turn sends one chunk (`sendChunk`): parts read from the source by ranged GETs, several
 *    ahead, streamed in order into one PATCH of CHUNK_SIZE bytes (or, unbounded, the rest of the blob as
 *    one stream, as `docker push` does), then the final `PUT ?digest=`. With `streamFirstWrite` (a queue
 *    step), a new session's first write is such a stream too, ended at a block boundary once the step's
 *    budget is spent (also while it waits for a slow source): a registry that takes a stream takes it as
 *    the first write, and one PATCH per step costs the registry one flush instead of one per chunk. The
 *    newest state is handed to `checkpoint` after every chunk; the step ends when its budget is spent and
 *    returns the state, which any process may continue later.
 * 3. Recovery (`recover`): when the target fails a chunk, ask the registry what the session holds and
 *    continue only from exactly the offset we know (or that offset plus the chunk whose answer was lost);
 *    otherwise start a new session from 0 — a PATCH whose answer was lost is never replayed blindly.
 *    (Distribution refuses every Location but the newest, 404 BLOB_UPLOAD_INVALID, and keeps the session: when the
 *    lost answer held the newest, that session can be neither continued nor cancelled, and stays on the registry
 *    until its upload purging removes it.) A failure of the *source* ends the step instead: the queue
 *    tries the step again later, and a new session would not help.
 */
import { createHash, type Hash } from 'node:crypto';
import { isTemporary, onSide, type OciImportError } from '../errors.js';
import { RegistryError } from '../oci/errors.js';
import type { RegistryClient, UploadSession } from '../oci/registry.js';
import { DEFAULT_RETRY, oneAttempt, retry, throwIfAborted, type RetryPolicy } from '../retry.js';
import { ImportError } from './errors.js';
import { PartReader, type PartPool, type PartStream } from './part-reader.js';
import type { BlobState, EngineEvents, PlannedBlob, StepBudget, UploadingBlob } from './types.js';

export interface CopyBlobOptions {
  readonly source: RegistryClient;
  readonly sourceRepository: string;
  readonly target: RegistryClient;
  /** Repositories of the target registry that may hold the blob already (mount candidates). */
  readonly mountFrom: readonly string[];
  /** Bytes per PATCH; Infinity: the rest of the blob as one streamed PATCH. */
  readonly chunkSize: number;
  /** Ranged GETs in flight ahead of the upload. */
  readonly fetchConcurrency: number;
  /** Shared by the blobs copied at once: their part slots and buffers. */
  readonly partPool: PartPool;
  /** Bytes per ranged GET (default DEFAULT_PART_SIZE; tests use small ones). */
  readonly partSize?: number;
  /** Largest part as a multiple of the part size (default: the reader's; tests pin parts with 1). */
  readonly partGrowth?: number;
  /** Attempts of one part's GET. */
  readonly partRetry?: RetryPolicy;
  /** Sessions tried within one step when the target fails chunks (resume or restart). */
  readonly sessionRetry?: RetryPolicy;
  readonly events?: EngineEvents;
  /** Called with the new state after every change the registry confirmed (persist it: the Location
   * changes with every PATCH, and only the newest one can continue the session). */
  readonly checkpoint?: (state: BlobState) => Promise<void>;
  /** A new session's first write as one streamed PATCH, ended when the step's budget is spent; later writes in chunks. */
  readonly streamFirstWrite?: boolean;
  /** Called every HEARTBEAT_MS while the upload runs (not awaited): a streamed first write has no chunk end to checkpoint at. */
  readonly heartbeat?: () => Promise<void>;
  /** Called as the request that closes the upload (the final PUT, its digest checked) goes out. */
  readonly onClosing?: () => void;
  /**
   * The target repository is taken to be new to the blob (the plan found none of its tags there): a small blob is
   * fetched while the POST that opens its upload asks whether the repository holds it (`askWithUpload`).
   */
  readonly newToTarget?: boolean;
}

/** How often `heartbeat` is called while an upload runs (a queue step reads its job: a cancel), streamed first writes included. */
export const HEARTBEAT_MS = 1000;

/** Four sessions (resumes or restarts) per step before the step gives up and the queue retries later. */
const DEFAULT_SESSION_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 4 };

export function initialBlobState(blob: Pick<PlannedBlob, 'digest' | 'size'>, repository: string): BlobState {
  return { phase: 'pending', digest: blob.digest, size: blob.size, repository, sessions: 0 };
}

/** Blobs up to this size may be fetched from the source before the target has said it lacks them (`askWithUpload`). */
export const ASK_WITH_UPLOAD_BYTES = 1024 * 1024;

/**
 * Whether the target is asked for a blob with the POST that opens its upload, its bytes fetched meanwhile, instead of
 * a HEAD first: one round trip less for each blob the target lacks (two requests instead of three, the final PUT
 * included). For a small blob that starts afresh into one repository (no other repository to mount from) of a
 * target new to it: the plan found none of its tags, and the client has not seen that repository hold a blob. Where
 * the repository does hold it after all, up to ASK_WITH_UPLOAD_BYTES were fetched for nothing (and dropped).
 */
function askWithUpload(state: BlobState, o: CopyBlobOptions): boolean {
  return (
    o.newToTarget === true &&
    state.phase === 'pending' &&
    state.size <= ASK_WITH_UPLOAD_BYTES &&
    o.mountFrom.length === 0 &&
    !o.target.knownToHoldBlobs(state.repository)
  );
}

export async function copyBlob(state: BlobState, budget: StepBudget, o: CopyBlobOptions): Promise<BlobState> {
  if (state.phase === 'done') return state;
  const asks = askWithUpload(state, o);
  const skipped = asks ? undefined : await presentOrMounted(state, o, budget.signal);
  if (skipped) {
    o.events?.onBlobDone?.(skipped);
    return skipped;
  }
  const upload = new Upload(state, budget, o, asks);
  try {
    const s = await upload.run();
    if (s.phase === 'done') o.events?.onBlobDone?.(s);
    return s;
  } catch (err) {
    // Without a checkpoint nobody can resume the session this attempt opened: close it on the target.
    if (!o.checkpoint) await upload.abandon();
    throw err;
  } finally {
    upload.close();
  }
}

/** How long closing an abandoned upload session may take (its attempt has failed already). */
const ABANDON_MS = 10_000;

/** The ladder's first rungs: done when the target has the blob, or can mount it from a repository that has. */
async function presentOrMounted(
  state: BlobState,
  o: CopyBlobOptions,
  signal?: AbortSignal,
): Promise<BlobState | undefined> {
  const existing = await o.target.headBlob(state.repository, state.digest, { signal });
  if (existing !== undefined) {
    if (existing >= 0 && existing !== state.size) {
      throw new ImportError(
        'BLOB_SIZE_MISMATCH',
        `target ${o.target.registry}/${state.repository} holds ${state.digest} with ${existing} bytes, the source says ${state.size}`,
        { side: 'target' },
      );
    }
    // (a step whose final PUT succeeded but whose answer or checkpoint was lost lands here too)
    if (state.phase === 'uploading') await o.target.cancelUpload(state.location, { signal });
    return { ...base(state), phase: 'done', outcome: state.phase === 'uploading' ? 'copied' : 'existed' };
  }
  if (state.phase !== 'pending') return undefined;
  for (const from of o.mountFrom) {
    if (from !== state.repository && (await o.target.mountBlob(state.repository, state.digest, from, { signal }))) {
      return { ...base(state), phase: 'done', outcome: 'mounted' };
    }
  }
  return undefined;
}

function base(s: BlobState): Pick<BlobState, 'digest' | 'size' | 'repository' | 'sessions'> {
  return { digest: s.digest, size: s.size, repository: s.repository, sessions: s.sessions };
}

/** The chunk a failed request was sending (its answer may be lost after the registry applied it). */
interface InFlight {
  readonly from: number;
  readonly length: number;
  /** The request was the final PUT carrying these bytes. */
  readonly final: boolean;
  /** Bytes of it already counted in progress and hash. */
  sent: number;
}

/** One step of one blob's upload. */
class Upload {
  private readonly reader: PartReader;
  private readonly pace: Pace;
  private s: BlobState;
  /** The running digest; only known when this step saw every byte from 0 (else the target's own check on the final PUT verifies). */
  private hash: Hash | undefined;
  private inFlight: InFlight | undefined;
  /** What failed the last chunk (for the notice saying what recovery did). */
  private failure: unknown;
  private chunks = 0;
  /** The checkpoint being written behind the chunk in flight (one write after the other). */
  private saving: Promise<void> = Promise.resolve();
  /** A checkpoint written behind that failed: it ends the step at the next chunk. */
  private saveFailure: { error: unknown } | undefined;
  /** The session's retry policy; what an attempt of it sends is sent once (lib/retry.ts: no nested retries). */
  private readonly sessionRetry: RetryPolicy;
  private readonly oneAttempt: RetryPolicy;

  constructor(
    state: BlobState,
    private readonly budget: StepBudget,
    private readonly o: CopyBlobOptions,
    /** The target has not been asked whether it holds the blob: the POST opening the session asks (`askWithUpload`). */
    private readonly asks = false,
  ) {
    this.s = state;
    this.sessionRetry = o.sessionRetry ?? DEFAULT_SESSION_RETRY;
    this.oneAttempt = oneAttempt(this.sessionRetry);
    this.pace = new Pace(state.phase === 'uploading' ? state.offset : 0, budget);
    this.reader = new PartReader({
      source: o.source,
      repository: o.sourceRepository,
      digest: state.digest,
      size: state.size,
      concurrency: o.fetchConcurrency,
      partSize: o.partSize,
      partGrowth: o.partGrowth,
      pool: o.partPool,
      retry: o.partRetry ?? o.source.retryPolicy,
      signal: budget.signal,
      events: o.events,
      wanted: (offset) => this.pace.wanted(offset, this.s, this.chunks, this.chunkLength()),
    });
  }

  close(): void {
    this.reader.close();
  }

  /** Cancels the open session (best effort, bounded: the step's own signal may have ended already). */
  async abandon(): Promise<void> {
    if (this.s.phase === 'uploading')
      await this.o.target.cancelUpload(this.s.location, { signal: AbortSignal.timeout(ABANDON_MS) });
  }

  async run(): Promise<BlobState> {
    // between checkpoints too: a streamed first write has none, and a slow source may hold up even a chunk's first bytes
    const { heartbeat } = this.o;
    const beating = heartbeat ? setInterval(() => void heartbeat().catch(() => undefined), HEARTBEAT_MS) : undefined;
    try {
      return await this.steps();
    } finally {
      clearInterval(beating);
    }
  }

  private async steps(): Promise<BlobState> {
    // A new session's first bytes are asked of the source while the target opens the session (and its checkpoint
    // is written): two independent round trips at once, not one after the other. A session resumed elsewhere
    // than 0 reads from where the registry says it stands, once it has said so.
    if (this.s.phase === 'pending') {
      const length = this.o.streamFirstWrite ? Infinity : this.o.chunkSize;
      this.reader.chunk(0, Math.min(this.s.size, length), length);
    }
    this.s = await this.open(this.s);
    // the target held the blob after all (its bytes on their way are dropped as the upload closes)
    if (this.s.phase === 'done') return this.s;
    return retry(
      async (attempt) => {
        try {
          if (attempt > 1) await this.recover();
          return await this.loop();
        } catch (err) {
          if (this.budget.signal?.aborted) throw err;
          // what the copy did not attribute is the target's (the source's parts and storage say so themselves)
          throw onSide(err, 'target');
        }
      },
      this.sessionRetry,
      {
        signal: this.budget.signal,
        // the target failed a chunk: worth another session; the source failing, storage, or a refusal is not
        retryable: (err) =>
          !(err instanceof ImportError) &&
          (err as OciImportError).side === 'target' &&
          (isTemporary(err) || isSessionError(err)),
        onRetry: (err) => {
          this.failure = err;
        },
      },
    );
  }

  /**
   * Chunks until the blob is done or the step's budget is spent. Each chunk's checkpoint is written while
   * the next chunk goes out, not before it (a storage round trip per chunk held up the upload), and one
   * at a time: a chunk waits for the checkpoint of the chunk two before it. The step returns once the last
   * one is written. A checkpoint that cannot be written ends the step at the next chunk. The price: a
   * worker that dies while a chunk is on its way leaves a checkpoint behind the registry, and the next step
   * starts the session again (as it did before when the worker died during a PATCH, most of a step's time).
   */
  private async loop(): Promise<BlobState> {
    let twoBefore: Promise<void> = Promise.resolve();
    try {
      while (this.s.phase === 'uploading') {
        await twoBefore;
        if (this.saveFailure) throw this.saveFailure.error;
        // a stream ended by a stop (sendChunk) returns its state: the step ends there, its checkpoint written
        throwIfAborted(this.budget.signal);
        // Every step makes progress (at least one request), however small its budget; one that has sent every byte
        // closes the upload (an empty PUT) past its budget too, rather than leave one request to another step.
        if (this.chunks > 0 && this.s.offset < this.s.size && this.pace.spent(this.chunks)) break;
        this.s = await this.sendChunk(this.s);
        this.chunks++;
        this.inFlight = undefined;
        if (this.s.phase === 'uploading') {
          twoBefore = this.saving;
          this.saveBehind(this.s);
        }
      }
    } finally {
      await this.saving.catch(() => undefined);
    }
    if (this.saveFailure) throw this.saveFailure.error;
    return this.s;
  }

  private saveBehind(s: BlobState): void {
    // the checkpoint is the job store's work, retried by its own loop (an ETag conflict), not by the session's
    this.saving = this.saving
      .then(() => this.write(s))
      .catch((error: unknown) => {
        this.saveFailure ??= { error };
      });
  }

  private chunkLength(): number {
    if (this.streamsFirstWrite()) return Infinity;
    return Math.max(this.o.chunkSize, this.s.phase === 'uploading' ? (this.s.minChunkLength ?? 0) : 0);
  }

  /** A queue step at the start of a session: its first write goes as one stream, cut at the budget. */
  private streamsFirstWrite(): boolean {
    return this.o.streamFirstWrite === true && this.s.phase === 'uploading' && this.s.offset === 0;
  }

  /** One transition: the next chunk as a PATCH, or the last bytes (or none) with the final PUT. */
  private async sendChunk(s: UploadingBlob): Promise<BlobState> {
    const start = s.offset;
    const end = Math.min(s.size, start + this.chunkLength());
    this.reader.chunk(start, end, this.chunkLength());
    // The end in one buffer (a small blob, the tail of a chunked one, or nothing left after a streamed PATCH).
    if (end >= s.size && this.reader.partEnd(start) >= s.size) return this.finish(s, start);
    // the source answers before the target's request opens: a source failing at once costs no PATCH
    await this.reader.firstBytes(start);
    const cut = this.streamsFirstWrite();
    const stream = this.reader.stream(start, end);
    const inFlight: InFlight = { from: start, length: end - start, final: false, sent: 0 };
    this.inFlight = inFlight;
    const body = this.hashing(cut ? this.untilSpent(stream) : stream.chunks);
    const { target } = this.o;
    // A cut stream stopped by the step's signal (a cancel) is ended, not aborted: a registry that pins the offset in
    // the Location (distribution) answers a request with any other Location as invalid, so only the answer to this
    // PATCH can still cancel the session, or continue it. The request itself is aborted GRACE_MS later at most.
    const grace = cut ? new GraceSignal(this.budget.signal, GRACE_MS) : undefined;
    let sent = false;
    try {
      const location = Number.isFinite(this.chunkLength())
        ? await target.patchUpload(
            s.repository,
            s.location,
            start,
            { length: end - start, chunks: body },
            { signal: this.budget.signal },
          )
        : await target.streamUpload(s.repository, s.location, body, end - start, {
            signal: grace ? grace.signal : this.budget.signal,
          });
      sent = true;
      // a cut stream holds what it sent (the next step's status GET confirms it before going on)
      return { ...s, location, offset: cut ? start + inFlight.sent : end };
    } finally {
      grace?.dispose();
      stream.release(sent);
    }
  }

  /**
   * A streamed first write's body: the blocks in order until the step's budget is spent or its signal stops it,
   * checked before each block and while waiting for one (a slow source does not hold the step past its budget);
   * at least one block. A block that arrives after the cut is given back to the pool.
   */
  private async *untilSpent(stream: PartStream) {
    const blocks = stream.chunks[Symbol.asyncIterator]();
    const { signal } = this.budget;
    let any = false;
    try {
      for (;;) {
        const left = this.budget.until - Date.now();
        if (any && (left <= 0 || signal?.aborted)) return;
        const next = blocks.next();
        let got: IteratorResult<Buffer> | undefined;
        try {
          got = any ? await withinMs(next, left, signal) : await next;
        } catch (err) {
          // the stop aborted the source's reads too: the blocks sent so far end the body
          if (any && signal?.aborted) return;
          throw err;
        }
        if (got === undefined) {
          // the budget ran out (or the step was stopped) while waiting: the block on its way goes back to the pool
          void next.then(
            (r) => (r.done ? undefined : stream.release(true)),
            () => undefined,
          );
          return;
        }
        if (got.done) return;
        any = true;
        yield got.value;
      }
    } finally {
      void blocks.return?.(undefined);
    }
  }

  /** The final PUT, with the bytes from `start` to the end of the blob (one part at most), after the digest check. */
  private async finish(s: UploadingBlob, start: number): Promise<BlobState> {
    const part = start < s.size ? await this.reader.part(start) : undefined;
    const data = part?.data;
    let sent = false;
    try {
      const computed = this.hash
        ? `sha256:${this.hash
            .copy()
            .update(data ?? Buffer.alloc(0))
            .digest('hex')}`
        : undefined;
      if (computed && s.digest.startsWith('sha256:') && computed !== s.digest) {
        await this.o.target.cancelUpload(s.location);
        throw new ImportError('DIGEST_MISMATCH', `the source served bytes for ${s.digest} that hash to ${computed}`, {
          temporary: true,
          side: 'source',
        });
      }
      this.inFlight = { from: start, length: data?.length ?? 0, final: true, sent: 0 };
      this.o.onClosing?.();
      await this.o.target.finishUpload(s.repository, s.location, s.digest, start, data, {
        signal: this.budget.signal,
        retry: this.oneAttempt,
      });
      sent = true;
    } finally {
      part?.release(sent);
    }
    if (data) this.o.events?.onBytes?.(data.length);
    return { ...base(s), phase: 'done', outcome: 'copied' };
  }

  /** Hashes and counts the bytes as the request body takes them. */
  private async *hashing(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const part of chunks) {
      this.hash?.update(part);
      this.inFlight!.sent += part.length;
      this.o.events?.onBytes?.(part.length);
      yield part;
    }
  }

  /**
   * pending → uploading: continue the saved session where the registry confirms our offset, else a new one. When the
   * target has not been asked whether it holds the blob, the POST asks (done when it does); a registry that answers
   * that POST otherwise is asked the usual way, a HEAD (and the mounts) before a plain POST.
   */
  private async open(state: BlobState): Promise<BlobState> {
    let s: UploadingBlob;
    if (this.asks && state.phase === 'pending') {
      const { signal } = this.budget;
      const answer = await this.o.target.startUploadUnlessPresent(state.repository, state.digest, { signal });
      if (answer === 'present') return { ...base(state), phase: 'done', outcome: 'existed' };
      if (answer === undefined) {
        const skipped = await presentOrMounted(state, this.o, signal);
        if (skipped) return skipped;
        s = await this.resumeOrStart(state, 0);
      } else s = started(state, answer);
    } else s = await this.resumeOrStart(state, 0);
    this.hash = s.offset === 0 ? createHash('sha256') : undefined;
    if (s !== state) await this.save(s);
    return s;
  }

  /** After a failed chunk: done if its final PUT did land, else where the registry says the session stands. */
  private async recover(): Promise<void> {
    const s = this.s;
    const lost = this.inFlight;
    this.inFlight = undefined;
    if (s.phase !== 'uploading') return;
    const signal = this.budget.signal;
    if (
      lost?.final &&
      (await this.o.target
        .headBlob(s.repository, s.digest, { signal, retry: this.oneAttempt })
        .catch(() => undefined)) === s.size
    ) {
      this.s = { ...base(s), phase: 'done', outcome: 'copied' };
      if (lost.length) this.o.events?.onBytes?.(lost.length);
      return;
    }
    const next = await this.resumeOrStart(s, lost && !lost.final ? lost.length : 0, this.oneAttempt);
    const kept = next.phase === 'uploading' && lost && next.offset === lost.from + lost.length;
    if (!kept && lost?.sent) this.o.events?.onBytes?.(-lost.sent);
    if (next.phase === 'uploading' && next.offset === 0) this.hash = createHash('sha256');
    else if (!kept) this.hash = undefined;
    this.o.events?.onNotice?.(
      `upload of ${s.digest} ${next.sessions !== s.sessions ? 'restarted in a new session' : `resumed at ${next.offset}`} after: ${(this.failure as Error | undefined)?.message ?? 'a failed request'}`,
    );
    this.s = next;
    await this.save(next);
  }

  /** Writes a checkpoint after the one written behind the last chunk, if any (one guarded write after another). */
  private async save(s: BlobState): Promise<void> {
    await this.saving;
    if (this.saveFailure) throw this.saveFailure.error;
    await this.write(s);
  }

  private async write(s: BlobState): Promise<void> {
    try {
      await this.o.checkpoint?.(s);
    } catch (err) {
      throw onSide(err, 'storage');
    }
  }

  /**
   * Continues the saved session when the registry confirms exactly our offset (or exactly our offset
   * plus a chunk whose answer we lost), else starts a new session from byte 0.
   */
  private async resumeOrStart(state: BlobState, pendingChunk: number, retry?: RetryPolicy): Promise<UploadingBlob> {
    const { target } = this.o;
    const o = { signal: this.budget.signal, retry };
    if (state.phase === 'uploading') {
      const status = await target.uploadStatus(state.repository, state.location, o).catch(() => undefined);
      if (status) {
        // The lost chunk did arrive: carry on after it.
        if (pendingChunk > 0 && status.size === state.offset + pendingChunk)
          return { ...state, location: status.location, offset: status.size };
        // Exactly our offset (`0-0` reads as 1 byte: ambiguous, and we never send a 1-byte non-final chunk).
        if (state.offset > 0 ? status.size === state.offset : status.size <= 1)
          return { ...state, location: status.location };
      }
      await target.cancelUpload(state.location, o);
    }
    return started(state, await target.startUpload(state.repository, o));
  }
}

/** The state of a blob whose new session the target just opened. */
function started(state: BlobState, session: UploadSession): UploadingBlob {
  return {
    ...base(state),
    phase: 'uploading',
    location: session.location,
    offset: 0,
    ...(session.minChunkLength ? { minChunkLength: session.minChunkLength } : {}),
    sessions: state.sessions + 1,
  };
}

function isSessionError(err: unknown): boolean {
  return (
    err instanceof RegistryError &&
    (err.status === 404 ||
      err.status === 416 ||
      err.has('BLOB_UPLOAD_INVALID') ||
      err.has('BLOB_UPLOAD_UNKNOWN') ||
      err.has('RANGE_INVALID'))
  );
}

/**
 * The upload's pace within one step (bytes the registry accepted since the step began): the step stops
 * starting chunks when its budget is spent, and parts it would not get to upload are not fetched.
 */
class Pace {
  private readonly began = Date.now();

  constructor(
    private readonly beganAt: number,
    private readonly budget: StepBudget,
  ) {}

  spent(chunks: number): boolean {
    return Date.now() >= this.budget.until || (this.budget.maxChunks !== undefined && chunks >= this.budget.maxChunks);
  }

  wanted(offset: number, s: BlobState, chunks: number, chunkLength: number): boolean {
    const at = s.phase === 'uploading' ? s.offset : 0;
    const ahead = Number.isFinite(chunkLength) ? Math.floor((offset - at) / chunkLength) + 1 : 1;
    if (this.budget.maxChunks !== undefined && chunks + ahead > this.budget.maxChunks) return false;
    const done = at - this.beganAt;
    const rate = done > 0 ? done / Math.max(1, Date.now() - this.began) : undefined;
    return (rate === undefined ? Date.now() : Date.now() + (offset - at) / rate) < this.budget.until;
  }
}

/**
 * `p`'s value if it settles within `ms` and before `signal` aborts (none at all when `ms` ≤ 0 or it has aborted),
 * else undefined; a rejection is thrown.
 */
async function withinMs<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (ms <= 0 || signal?.aborted) return undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
        onAbort = () => resolve(undefined);
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** How long a streamed PATCH ended by a stop may take to be answered before it is aborted after all. */
const GRACE_MS = 10_000;

/** A signal that aborts `ms` after `of` does (with its reason); `dispose` when the request it guards is over. */
class GraceSignal {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => {
    this.timer = setTimeout(() => this.controller.abort(this.of?.reason), this.ms);
  };

  constructor(
    private readonly of: AbortSignal | undefined,
    private readonly ms: number,
  ) {
    if (of?.aborted) this.onAbort();
    else of?.addEventListener('abort', this.onAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.of?.removeEventListener('abort', this.onAbort);
  }
}
