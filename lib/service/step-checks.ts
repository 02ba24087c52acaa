/**
 * A step checks itself against its job before it does anything — independently of the message's tag, so a
 * leaked key or a bug in the app still cannot make a step reach beyond the plan:
 *
 * - `fanout` and `blob` run only once the job is planned, for indexes inside the plan (a fan-out batch
 *   starts where the app's batches start);
 * - a `blob` step copies the blob the plan lists under its index, never a digest or size the message says
 *   (checked in the step against its stored task: lib/service/steps.ts);
 * - `finalize` runs only when blobs 0…n−1 are all done: a finalize before then would tag an incomplete
 *   import, or fail and leave the job `finalizing`, where it can no longer be canceled.
 *
 * A step that does not fit is refused (StepRefusedError): it sends nothing and leaves the job as it is.
 */
import { OciImportError } from '../errors.js';
import type { StepMessage } from '../store/queue.js';
import type { JobRecord } from '../store/store.js';

/** Blob steps one fan-out message enqueues at most. */
export const FANOUT_BATCH = 32;

export type RefusalCode = 'STEP_NOT_AUTHENTIC' | 'STEP_NOT_IN_PLAN';

/** A step message that must do nothing (not the app's, or not its job's plan). Never fails a job. */
export class StepRefusedError extends OciImportError {
  override name = 'StepRefusedError';
  constructor(code: RefusalCode, message: string) {
    super(code, message, { side: 'request' });
  }
}

/** The plan step wrote the plan (every plan holds at least its root manifest). */
export function isPlanned(job: JobRecord): boolean {
  return job.manifests > 0;
}

/** How many of blobs 0…n−1 are not done yet (indexes outside the plan never count). */
export function blobsMissing(job: JobRecord): number {
  const done = new Set(job.doneBlobs.filter((i) => Number.isInteger(i) && i >= 0 && i < job.blobsTotal));
  return job.blobsTotal - done.size;
}

/** Why `msg` does not fit `job` as it is stored, or undefined when it does. */
export function stepMismatch(job: JobRecord, msg: StepMessage): StepRefusedError | undefined {
  if (msg.step === 'plan') return undefined;
  const refuse = (why: string): StepRefusedError =>
    new StepRefusedError('STEP_NOT_IN_PLAN', `the ${msg.step} step does not fit job ${job.id}: ${why}`);
  if (!isPlanned(job)) return refuse('the import has no plan yet');
  if (msg.step === 'fanout') {
    const { from } = msg;
    return from < job.blobsTotal && from % FANOUT_BATCH === 0
      ? undefined
      : refuse(`no fan-out batch of the plan's ${job.blobsTotal} blobs starts at ${from}`);
  }
  if (msg.step === 'blob') {
    const index = msg.blob;
    return index < job.blobsTotal
      ? undefined
      : refuse(`blob ${index} is not one of the plan's ${job.blobsTotal} blobs`);
  }
  const missing = blobsMissing(job);
  return missing === 0 ? undefined : refuse(`${missing} of the plan's ${job.blobsTotal} blobs are not copied yet`);
}
