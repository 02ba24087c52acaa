/**
 * Canceling an import. `POST /api/imports/{id}/cancel` ends the job record at once (status `canceled`, an
 * ETag-guarded update, so it cannot cross another ending); the work winds down behind it:
 *
 * - a running blob step reads its job at every checkpoint (after a chunk, at most once a second, beside the
 *   checkpoint write and while the next chunk goes out, so it costs no time) and, once the job has ended,
 *   aborts whatever it has in flight through its AbortSignal, cancels its upload session on the target
 *   (DELETE on the upload URL) and releases the blob;
 * - every later message of the job finds it ended and only cleans up (lib/service/steps.ts `cleanUp`);
 * - tags: finalize marks the job `finalizing` (the same guarded update) before it writes a manifest — the blob
 *   step that completes the set does it in the write that records its blob, when it goes on to the tags itself —
 *   and a cancel that finds the mark is refused: so a canceled import never tags anything, and an import whose
 *   tags are being written is not reported canceled.
 *
 * A job that failed ends its other running blob steps the same way (they stop within a chunk after the next checkpoint).
 */
import { setMaxListeners } from 'node:events';
import { AbortedError, errorCode } from '../errors.js';
import { ENDED, type JobRecord, type JobStore } from '../store/store.js';

export type CancelOutcome =
  | { readonly kind: 'canceled'; readonly job: JobRecord }
  /** Ended before (succeeded, failed or canceled): nothing to cancel. */
  | { readonly kind: 'ended'; readonly job: JobRecord }
  /** Its manifests and tags are being written: too late to cancel. */
  | { readonly kind: 'finalizing'; readonly job: JobRecord }
  | { readonly kind: 'missing' };

/** One ETag-guarded read-modify-write of the job record (and, when it ends, its index entry and sealed credentials). */
export async function cancelJob(store: JobStore, id: string): Promise<CancelOutcome> {
  let refused: 'ended' | 'finalizing' | undefined;
  let job: JobRecord;
  try {
    job = await store.update(id, (j) => {
      refused = ENDED.has(j.status) ? 'ended' : j.finalizing ? 'finalizing' : undefined;
      if (refused) return undefined;
      const { waitingUntil: _w, lastError: _l, ...rest } = j;
      return { ...rest, status: 'canceled', error: { code: 'CANCELED', message: 'the import was canceled' } };
    });
  } catch (err) {
    if (errorCode(err) === 'JOB_NOT_FOUND') return { kind: 'missing' };
    throw err;
  }
  return { kind: refused ?? 'canceled', job };
}

/** The step of an import that ended (canceled, or failed by another step) stops. */
export class JobEndedError extends AbortedError {
  override name = 'JobEndedError';
  constructor(id: string, status: string) {
    super(`import ${id} is ${status}: the step stopped`, { temporary: false });
  }
}

/**
 * A step's view of its job ending: `signal` aborts when the step's own deadline does, or when `check()`
 * finds the job ended; `ended` says which.
 */
export class EndWatch {
  private readonly controller = new AbortController();
  readonly signal: AbortSignal;

  constructor(
    private readonly store: JobStore,
    private readonly id: string,
    parent: AbortSignal,
  ) {
    this.signal = AbortSignal.any([parent, this.controller.signal]);
    // every request of the step listens to it
    setMaxListeners(10_000, this.signal);
  }

  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  /** One read of the job record; aborts the step's work when the job has ended (or is gone). */
  async check(): Promise<void> {
    if (this.ended) return;
    const job = await this.store.get(this.id);
    if (!job || ENDED.has(job.status)) this.controller.abort(new JobEndedError(this.id, job?.status ?? 'gone'));
  }
}
