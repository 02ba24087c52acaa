/**
 * The checks a step makes against its job before it does anything (lib/service/step-checks.ts), one case per
 * boundary: the service tests (forged-steps.test.ts) show a forged step refused end to end; these pin each rule, so
 * that loosening one (an index past the plan, a fan-out batch that starts off the app's batches, a finalize with a
 * blob missing) fails a test of its own.
 */
import { describe, expect, it } from 'vitest';
import { blobsMissing, FANOUT_BATCH, stepMismatch, StepRefusedError } from '../../../lib/service/step-checks.js';
import type { StepMessage } from '../../../lib/store/queue.js';
import type { JobRecord } from '../../../lib/store/store.js';
import { jobRecord } from '../../support/job-record.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

/** A planned job (one manifest); the checks read only a few fields. */
const job = (fields: Partial<JobRecord>): JobRecord => jobRecord({ id: 'job-1', manifests: 1, ...fields });

const common = { v: 1, job: 'job-1', at: 0, mac: 'x' } as const;
const plan = { ...common, step: 'plan' } as unknown as StepMessage;
const fanout = (from: number) => ({ ...common, step: 'fanout', from }) as unknown as StepMessage;
const blob = (index: number) =>
  ({ ...common, step: 'blob', blob: index, digest: DIGEST, size: 1 }) as unknown as StepMessage;
const finalize = { ...common, step: 'finalize' } as unknown as StepMessage;

describe('step checks', () => {
  it('counts as done only indexes of the plan: whole numbers from 0 to blobsTotal − 1, each once', () => {
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 1, 2] }))).toBe(0);
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 2, 2] }))).toBe(1);
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [1, 2] }))).toBe(1); // index 0 counts like any other
    // A forged or corrupt record cannot make an incomplete import look complete.
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 2, -1] }))).toBe(1);
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 2, 3] }))).toBe(1);
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 2, 1.5] }))).toBe(1);
    expect(blobsMissing(job({ blobsTotal: 3, doneBlobs: [0, 2, Number.NaN] }))).toBe(1);
  });

  it('lets the plan step run before there is a plan, and nothing else', () => {
    const unplanned = job({ manifests: 0, blobsTotal: 0 });
    expect(stepMismatch(unplanned, plan)).toBeUndefined();
    for (const msg of [fanout(0), blob(0), finalize]) {
      const refusal = stepMismatch(unplanned, msg);
      expect(refusal).toBeInstanceOf(StepRefusedError);
      expect(refusal).toMatchObject({ code: 'STEP_NOT_IN_PLAN', side: 'request' });
      expect(refusal!.message).toBe(`the ${msg.step} step does not fit job job-1: the import has no plan yet`);
    }
  });

  it('runs a fan-out batch only where the app starts one: a multiple of the batch size, inside the plan', () => {
    const planned = job({ blobsTotal: FANOUT_BATCH + 1 });
    expect(stepMismatch(planned, fanout(0))).toBeUndefined();
    expect(stepMismatch(planned, fanout(FANOUT_BATCH))).toBeUndefined(); // the last blob starts a batch of one
    expect(stepMismatch(planned, fanout(1))?.message).toBe(
      `the fanout step does not fit job job-1: no fan-out batch of the plan's ${FANOUT_BATCH + 1} blobs starts at 1`,
    );
    expect(stepMismatch(job({ blobsTotal: FANOUT_BATCH }), fanout(FANOUT_BATCH))?.code).toBe('STEP_NOT_IN_PLAN');
    expect(stepMismatch(planned, fanout(2 * FANOUT_BATCH))?.code).toBe('STEP_NOT_IN_PLAN');
  });

  it('runs a blob step only for an index of the plan', () => {
    const planned = job({ blobsTotal: 3 });
    expect(stepMismatch(planned, blob(0))).toBeUndefined();
    expect(stepMismatch(planned, blob(2))).toBeUndefined();
    expect(stepMismatch(planned, blob(3))?.message).toBe(
      "the blob step does not fit job job-1: blob 3 is not one of the plan's 3 blobs",
    );
  });

  it('runs finalize only once every blob of the plan is done', () => {
    expect(stepMismatch(job({ blobsTotal: 3, doneBlobs: [0, 1, 2] }), finalize)).toBeUndefined();
    expect(stepMismatch(job({ blobsTotal: 0, doneBlobs: [] }), finalize)).toBeUndefined(); // an image with no blob
    expect(stepMismatch(job({ blobsTotal: 3, doneBlobs: [0, 2] }), finalize)?.message).toBe(
      "the finalize step does not fit job job-1: 1 of the plan's 3 blobs are not copied yet",
    );
  });
});
