/**
 * The steps of a queued import, each one bounded and idempotent (a message may arrive twice, a worker
 * may die at any instant):
 *
 * - `plan`: resolve the source and write the plan (limits refused here, before any blob step exists),
 *   then the first fan-out batch (its small blobs left out and copied by the plan step itself meanwhile);
 * - `fanout`: enqueue the blob steps of one batch of FANOUT_BATCH indexes and hand the rest to the next
 *   `fanout` — one message never enqueues a thousand, and a redelivered one finds its batch marked done
 *   (`job.fanout.next`) and enqueues nothing again;
 * - `blob`: one budgeted copy step of one blob, from its own checkpoint (under a lease), re-enqueued until
 *   done; the step that completes the set enqueues `finalize` (an ETag-guarded fan-in);
 * - `finalize`: the other target repositories' blobs (mounted), manifests, then tags.
 */
import { copyAllAndFinalize, engineFromConfig, type CopyContext, type ImportEngine } from '../engine/engine.js';
import { telemetry } from '../telemetry/index.js';
import { ImportError } from '../engine/errors.js';
import { PartPool } from '../engine/part-reader.js';
import { targetRefs } from '../engine/targets.js';
import { initialBlobState } from '../engine/copy-blob.js';
import { bytesPresent, referrerViews, type BlobState, type ImportPlan, type PlannedBlob } from '../engine/types.js';
import type { Config } from '../config.js';
import { OciImportError, errorMessage } from '../errors.js';
import { forEachLimited } from '../concurrency.js';
import type { Digest } from '../oci/digest.js';
import { parseReference } from '../oci/reference.js';
import { checkBoundSource, isBound } from '../policy/private-sources.js';
import { checkSource, systemLookup, type Lookup } from '../policy/sources.js';
import { checkTargetRepositories } from '../policy/targets.js';
import type { Registries, SideClient } from '../sides/registries.js';
import { EndWatch } from './cancel.js';
import type { JobQueue, StepMessage, StepOf } from '../store/queue.js';
import type { Logger } from '../store/types.js';
import { FANOUT_BATCH, StepRefusedError } from './step-checks.js';
import { ENDED, type BlobTask, type JobRecord, type JobStore } from '../store/store.js';

export { FANOUT_BATCH } from './step-checks.js';

/**
 * A blob step writes its checkpoint, and reads its job beside it (how a cancel reaches it), at most this
 * often while it copies, and always when it ends. Denser checkpoints buy nothing: the next chunk goes out
 * while a checkpoint is written, so the registry is ahead of any checkpoint but for an instant between two
 * chunks, and a step that resumes from one finds the session ahead and starts it again (copy-blob.ts).
 */
export const CHECKPOINT_EVERY_MS = 1000;
/** An import of at most this many blobs (and INLINE_IMPORT_BYTES) is copied in its plan step (see `inline`). */
export const INLINE_MAX_BLOBS = 16;
/**
 * Blobs of at most this size (config blobs, small layers) are copied in the plan step of a larger import too, up to
 * INLINE_MAX_BLOBS of them within INLINE_IMPORT_BYTES (see `copySmallBlobs`): a step of their own costs more than
 * their bytes.
 */
export const SMALL_BLOB_BYTES = 1024 * 1024;

export interface StepContext {
  /** Stop starting new work after this instant. */
  readonly until: number;
  readonly budgetMs: number;
  /** Ends everything in flight (the budget plus a margin). */
  readonly signal: AbortSignal;
  /**
   * Enqueues what follows this step when the step has done its part: this blob's next step, the next fan-out, a
   * finalize. Such a message may be lost with the step (its worker dying before the host sends it): the step's own
   * message then comes back and sends it again. What must go out before the step records it as done (the blob steps
   * of a fan-out batch) goes straight to the queue instead.
   */
  readonly next: (message: StepMessage) => Promise<void>;
}

export interface StepsOptions {
  readonly config: Config;
  readonly store: JobStore;
  readonly queue: JobQueue;
  readonly registries: Registries;
  readonly sides: (job: JobRecord) => Promise<{ source: SideClient; target: SideClient }>;
  readonly partPool: PartPool;
  /** This process, as a blob lease owner. */
  readonly owner: string;
  readonly leaseMarginMs: number;
  /** Least time between two checkpoints of a running blob step (default CHECKPOINT_EVERY_MS; tests: 0, every chunk). */
  readonly checkpointEveryMs?: number;
  readonly lookup?: Lookup;
  /** Imports up to this size are copied in their plan step (see `inline`); false: never. */
  readonly inline: { readonly blobs: number; readonly bytes: number } | false;
}

export class Steps {
  constructor(private readonly o: StepsOptions) {}

  async run(
    job: JobRecord,
    msg: StepMessage,
    step: StepContext,
    meta: { readonly log: Logger; readonly maxDequeueCount: number },
  ): Promise<void> {
    const { log } = meta;
    if (job.status === 'waiting')
      await this.o.store.update(job.id, (j) =>
        j.status === 'waiting' ? { ...j, status: 'running', waitingUntil: undefined } : undefined,
      );
    if (msg.step === 'plan') await this.plan(job, step, log);
    else if (msg.step === 'fanout') await this.fanout(job.id, msg.from, step);
    else if (msg.step === 'blob') await this.blob(job, msg, step, meta);
    else await this.finalize(job, step, log);
  }

  /** A step of a job that ended does nothing but clean up: a blob's open upload session is cancelled. */
  async cleanUp(job: JobRecord, msg: StepMessage): Promise<void> {
    if (msg.step !== 'blob') return;
    const task = await this.o.store.blobTask(job.id, msg.blob);
    const state = task?.task.state;
    if (state?.phase !== 'uploading') return;
    await this.o.registries.target(job.request.target).client.cancelUpload(state.location);
    await this.o.store.saveBlobTask(job.id, msg.blob, { state: initialBlobState(state, state.repository) }, task!.etag);
  }

  private engine(sides: { source: SideClient; target: SideClient }): ImportEngine {
    return engineFromConfig(
      this.o.config,
      { source: sides.source.client, target: sides.target.client },
      { partPool: this.o.partPool },
    );
  }

  private context(job: JobRecord): CopyContext {
    const src = parseReference(job.request.source);
    return {
      source: { registry: src.registry, repository: src.repository },
      target: { registry: job.request.target, repositories: job.repositories },
    };
  }

  // ---- plan ----------------------------------------------------------------------------------------

  private async plan(job: JobRecord, step: StepContext, log: Logger): Promise<void> {
    // one engine for the whole step: its sides open the job's sealed credentials once
    let built: ImportEngine | undefined;
    const engine = async () => (built ??= this.engine(await this.o.sides(job)));
    let plan = await this.o.store.plan(job.id);
    if (!plan) {
      // Checked again here: a queued request skips HTTP, and DNS may have changed since.
      const registry = parseReference(job.request.source).registry;
      const resourceId = job.request.registryResourceId;
      if (resourceId && isBound(this.o.config, resourceId))
        await checkBoundSource(registry, resourceId, this.o.config.allowedSources, this.o.lookup ?? systemLookup);
      else await checkSource(registry, this.o.config.allowedSources, this.o.lookup);
      const r = job.request;
      checkTargetRepositories(targetRefs(r), this.o.config.targetRepositories);
      const planner = await engine();
      plan = await planner.plan(
        {
          source: r.source,
          target: r.target,
          images: r.images,
          repository: r.repository,
          force: r.force,
          platforms: r.platforms,
          includeReferrers: r.includeReferrers,
          referrerTypes: r.referrerTypes,
        },
        step.signal,
      );
      await this.o.store.savePlan(job.id, plan);
    }
    const p = plan;
    const bytes = p.blobs.reduce((n, b) => n + b.size, 0);
    const planned = await this.o.store.update(job.id, (j) =>
      ENDED.has(j.status)
        ? undefined
        : {
            ...j,
            status: 'running',
            blobsTotal: p.blobs.length,
            bytesTotal: bytes,
            manifests: p.manifests.length,
            notes: p.notes,
            ...(p.referrers ? { referrers: referrerViews(p) } : {}),
          },
    );
    log.info(`job ${job.id} planned: ${p.manifests.length} manifests, ${p.blobs.length} blobs`);
    telemetry().annotate({
      'oci_import.bytes_total': bytes,
      'oci_import.blobs': p.blobs.length,
      'oci_import.manifests': p.manifests.length,
    });
    if (ENDED.has(planned.status)) {
      log.info(`job ${job.id} is ${planned.status}: no blob steps`);
      return;
    }
    const small = this.o.inline && p.blobs.length <= this.o.inline.blobs && bytes <= this.o.inline.bytes;
    if (small && (await this.inline(planned, p, await engine(), step, log))) return;
    if (p.blobs.length === 0) {
      await step.next({ v: 1, job: job.id, step: 'finalize' });
      return;
    }
    const smallOnes = small ? [] : this.smallBlobs(planned, p);
    // the record just written goes on: the fan-out's own update reads the job again before it writes
    const fannedOut = await this.fanout(job.id, 0, step, p.blobs, new Set(smallOnes.map((x) => x.index)), planned);
    if (smallOnes.length && fannedOut) await this.copySmallBlobs(fannedOut, p, smallOnes, await engine(), step, log);
  }

  /**
   * The small blobs of an import too large to copy whole in its plan step (the config blobs of an image's platforms,
   * small layers), from the first fan-out batch: up to INLINE_MAX_BLOBS of SMALL_BLOB_BYTES at most, within
   * INLINE_IMPORT_BYTES. A blob step of their own would cost a message, a lease, checkpoints and an invocation slot
   * for a few kilobytes; none while INLINE_IMPORT_BYTES is 0.
   */
  private smallBlobs(job: JobRecord, plan: ImportPlan): { b: PlannedBlob; index: number }[] {
    const inline = this.o.inline;
    if (!inline) return [];
    let bytes = 0;
    return plan.blobs
      .slice(0, FANOUT_BATCH)
      .map((b, index) => ({ b, index }))
      .filter(({ b, index }) => b.size <= SMALL_BLOB_BYTES && !job.doneBlobs.includes(index))
      .filter(({ b }) => (bytes += b.size) <= inline.bytes)
      .slice(0, inline.blobs);
  }

  /**
   * Copies the small blobs the fan-out left out, BLOB_CONCURRENCY at once, while the blob steps of the others run,
   * and records them done; the one whose record completes the set sends the finalize (a blob step ending last does
   * it itself). Nothing is checkpointed: a plan step run again (its worker died) copies them again (found by HEAD,
   * skipped), and its fan-out sends nothing twice. What is not done when the budget ends, or fails, goes to blob
   * steps of its own as usual.
   */
  private async copySmallBlobs(
    job: JobRecord,
    plan: ImportPlan,
    picked: readonly { b: PlannedBlob; index: number }[],
    engine: ImportEngine,
    step: StepContext,
    log: Logger,
  ): Promise<void> {
    const id = job.id;
    if (ENDED.has(job.status)) return;
    const context = this.context(job);
    const done: { index: number; state: Extract<BlobState, { phase: 'done' }> }[] = [];
    await forEachLimited(picked, this.o.config.blobConcurrency, async ({ b, index }) => {
      try {
        let s: BlobState = initialBlobState(b, job.repositories[0]!);
        while (s.phase !== 'done' && Date.now() < step.until)
          s = await engine.copyBlob(context, s, { until: step.until, signal: step.signal });
        if (s.phase === 'done') done.push({ index, state: s });
      } catch (err) {
        log.warn(`job ${id}: blob ${b.digest} goes to a blob step: ${errorMessage(err)}`);
      }
    });
    for (const { state } of done) telemetry().count('bytes', state.size, { outcome: state.outcome });
    const updated = await this.o.store.update(id, (j) => {
      const fresh = done.map((d) => d.index).filter((i) => !j.doneBlobs.includes(i));
      return ENDED.has(j.status) || !fresh.length
        ? undefined
        : {
            ...j,
            doneBlobs: [...j.doneBlobs, ...fresh],
            blobBytes: { ...j.blobBytes, ...Object.fromEntries(fresh.map((i) => [i, plan.blobs[i]!.size])) },
          };
    });
    log.info(`job ${id}: ${done.length} of ${plan.blobs.length} blobs copied in the plan step (small ones)`);
    if (ENDED.has(updated.status)) return;
    const left = picked.filter(({ index }) => !updated.doneBlobs.includes(index));
    if (left.length) await this.sendBlobSteps(updated, left);
    else if (updated.doneBlobs.length === updated.blobsTotal) await step.next({ v: 1, job: id, step: 'finalize' });
  }

  /**
   * A small import (a chart, a signature, a small base image) done in the plan step itself: its blobs copied
   * BLOB_CONCURRENCY at once, then finalized — one message and a handful of storage operations instead of a
   * step per blob. Nothing is checkpointed: if the step fails it is retried whole (what the target has is
   * found by HEAD and skipped); if the budget runs out first (a slow source), it returns false and the import
   * goes on as any other, one blob step per blob.
   */
  private async inline(
    job: JobRecord,
    plan: ImportPlan,
    engine: ImportEngine,
    step: StepContext,
    log: Logger,
  ): Promise<boolean> {
    const run = await copyAllAndFinalize(engine, plan, this.context(job), {
      blobConcurrency: this.o.config.blobConcurrency,
      until: step.until,
      signal: step.signal,
      beforeFinalize: () => this.markFinalizing(job, log),
    });
    // bytes by outcome, once per blob (the first repository's copy; the others mount from it)
    for (const b of run.blobs)
      if (b.phase === 'done' && b.repository === job.repositories[0])
        telemetry().count('bytes', b.size, { outcome: b.outcome });
    if (run.outcome === 'incomplete') return false;
    if (run.outcome === 'stopped') return true;
    const { result } = run;
    await this.o.store.update(job.id, (j) =>
      ENDED.has(j.status)
        ? undefined
        : {
            ...j,
            status: 'succeeded',
            digest: result.digest,
            doneBlobs: plan.blobs.map((_, i) => i),
            blobBytes: Object.fromEntries(plan.blobs.map((b, i) => [i, b.size])),
          },
    );
    log.info(
      `job ${job.id} succeeded in its plan step: ${result.digest} (${[...result.tagged, ...result.unchanged].join(', ') || 'by digest'})`,
    );
    return true;
  }

  /**
   * The point of no return before any manifest is written: a cancel after this mark is refused
   * (IMPORT_FINALIZING), one before it ends the step here. False when the job has ended (nothing is tagged).
   * A record that has the mark already (the blob step that completed the set wrote it, or a finalize before) is
   * not written again: no cancel got past it since.
   */
  private async markFinalizing(job: JobRecord, log: Logger): Promise<boolean> {
    if (job.finalizing && !ENDED.has(job.status)) return true;
    const id = job.id;
    const marked = await this.o.store.update(id, (j) =>
      ENDED.has(j.status) || j.finalizing ? undefined : { ...j, finalizing: true },
    );
    if (!ENDED.has(marked.status)) return true;
    log.info(`job ${id} is ${marked.status}: nothing tagged`);
    return false;
  }

  // ---- fan-out ---------------------------------------------------------------------------------------

  /**
   * Enqueues the blob steps of `[from, from + FANOUT_BATCH)` and the next fan-out. The blob steps go
   * straight to the queue before the batch is marked done: a worker dying in between makes a redelivery
   * send them again (harmless: blob steps hold leases); once marked, a redelivery sends nothing but, if it
   * never went, the next fan-out (`step.next`). Returns the job as the fan-out left it (or found it, when a later
   * batch was handed over already), undefined once the job has ended.
   */
  private async fanout(
    id: string,
    from: number,
    step: StepContext,
    known?: readonly PlannedBlob[],
    skip?: ReadonlySet<number>,
    /** The job as the caller has just written it (the plan step), else it is read. */
    current?: JobRecord,
  ): Promise<JobRecord | undefined> {
    const blobs = known ?? (await this.o.store.blobs(id));
    if (!blobs)
      throw new OciImportError('PLAN_MISSING', `job ${id}: fan-out without a plan`, {
        temporary: true,
        side: 'storage',
      });
    const end = Math.min(blobs.length, from + FANOUT_BATCH);
    let job = current ?? (await this.o.store.get(id));
    if (!job || ENDED.has(job.status)) return undefined;
    if ((job.fanout?.next ?? 0) <= from) {
      const batch = blobs
        .slice(from, end)
        .map((b, k) => ({ b, index: from + k }))
        .filter(({ index }) => !job!.doneBlobs.includes(index) && !skip?.has(index));
      await this.sendBlobSteps(job, batch);
      job = await this.o.store.update(id, (j) =>
        (j.fanout?.next ?? 0) >= end ? undefined : { ...j, fanout: { next: end } },
      );
    } else if (job.fanout!.next !== end) {
      return job; // a later batch is done: so was the hand-over of this one
    }
    if (end < blobs.length) await step.next({ v: 1, job: id, step: 'fanout', from: end });
    return job;
  }

  /** Blob steps straight to the queue, each blob's task written from the plan before its message goes out (the step checks the message against it). */
  private async sendBlobSteps(job: JobRecord, blobs: readonly { b: PlannedBlob; index: number }[]): Promise<void> {
    const repository = job.repositories[0]!;
    await Promise.all(
      blobs.map(({ b, index }) =>
        this.o.store.saveBlobTask(job.id, index, { state: initialBlobState(b, repository) }, undefined),
      ),
    );
    await Promise.all(
      blobs.map(({ b, index }) =>
        this.o.queue.send({ v: 1, job: job.id, step: 'blob', blob: index, digest: b.digest, size: b.size }),
      ),
    );
  }

  // ---- blob ------------------------------------------------------------------------------------------

  private async blob(
    job: JobRecord,
    msg: StepOf<'blob'>,
    step: StepContext,
    { log, maxDequeueCount }: { log: Logger; maxDequeueCount: number },
  ): Promise<void> {
    const index = msg.blob;
    const leaseMs = step.budgetMs + this.o.leaseMarginMs;

    // 1. Claim the blob: one step at a time works on it; a live lease elsewhere → look again later.
    const existing = await this.o.store.blobTask(job.id, index);
    const blob = await this.descriptor(job.id, msg, existing?.task);
    let task: BlobTask = existing?.task ?? { state: initialBlobState(blob, job.repositories[0]!) };
    if (task.state.phase === 'done') {
      await this.blobDone(job.id, index, task.state, step, log);
      return;
    }
    const now = Date.now();
    if (task.lease && task.lease.owner !== this.o.owner && task.lease.until > now) {
      await this.o.queue.send(msg, Math.ceil((task.lease.until - now) / 1000) + 1);
      return;
    }
    // A lease taken and never given back: the step's worker died (or timed out) before it could save.
    const claims = (task.claims ?? 0) + 1;
    if (claims > maxDequeueCount) {
      throw new ImportError(
        'STEP_POISONED',
        `the step of blob ${index} was started ${claims - 1} times and never finished (its worker timed out or died each time); start the import again, and see the function logs if it recurs`,
        { side: 'storage' },
      );
    }
    task = { ...task, lease: { owner: this.o.owner, until: now + leaseMs }, claims };
    let etag = await this.o.store.saveBlobTask(job.id, index, task, existing?.etag);
    if (!etag) {
      // Someone else claimed it between our read and write: they carry on; check back after their lease.
      await this.o.queue.send(msg, Math.ceil(leaseMs / 1000));
      return;
    }

    // 2. One budgeted step, saving the checkpoint after a chunk at most every CHECKPOINT_EVERY_MS — and reading the
    //    job beside it: a job that ended (canceled, or failed by another step) aborts the chunk in flight, and the
    //    step cleans up.
    const watch = new EndWatch(this.o.store, job.id, step.signal);
    const save = async (state: BlobState, keepLease: boolean): Promise<void> => {
      const next: BlobTask = keepLease ? { ...task, state } : { state };
      const written = await this.o.store.saveBlobTask(job.id, index, next, etag);
      if (!written)
        throw new OciImportError('CHECKPOINT_LOST', `job ${job.id} blob ${index}: checkpoint lost to another worker`, {
          temporary: true,
          side: 'storage',
        });
      etag = written;
      task = next;
    };
    let state: BlobState;
    let checkpointed = 0;
    let jobRead = 0;
    try {
      const engine = this.engine(await this.o.sides(job));
      state = await engine.copyBlob(
        this.context(job),
        task.state,
        { until: step.until, signal: watch.signal },
        {
          checkpoint: async (s) => {
            if (Date.now() - checkpointed < (this.o.checkpointEveryMs ?? CHECKPOINT_EVERY_MS)) return;
            checkpointed = jobRead = Date.now();
            await Promise.all([save(s, true), watch.check()]);
          },
          // while one streamed PATCH carries the step's bytes, no chunk ends: the job is read beside it (a cancel),
          // unless a checkpoint read it within the last CHECKPOINT_EVERY_MS
          heartbeat: async () => {
            if (Date.now() - jobRead < (this.o.checkpointEveryMs ?? CHECKPOINT_EVERY_MS)) return;
            jobRead = Date.now();
            await watch.check();
          },
        },
      );
      await save(state, false);
    } catch (err) {
      await save(task.state, false).catch(() => undefined);
      if (!watch.ended) throw err;
      await this.cleanUp(job, msg);
      log.info(`job ${job.id} blob ${index}: the import ended, step stopped and its upload session canceled`);
      return;
    }

    // 3. The fan-in, or progress and the next step of this blob.
    await this.afterCopy(job.id, msg, state, step, log);
  }

  private async afterCopy(
    id: string,
    msg: StepOf<'blob'>,
    state: BlobState,
    step: StepContext,
    log: Logger,
  ): Promise<void> {
    const index = msg.blob;
    if (state.phase === 'done') {
      log.info(`job ${id} blob ${index} done (${state.outcome})`);
      telemetry().count('bytes', state.size, { outcome: state.outcome });
      telemetry().annotate({ 'oci_import.blob_bytes': state.size, 'oci_import.blob_outcome': state.outcome });
      await this.blobDone(id, index, state, step, log);
      return;
    }
    const present = bytesPresent(state);
    await this.o.store.update(id, (j) =>
      j.blobBytes[index] === present ? undefined : { ...j, blobBytes: { ...j.blobBytes, [index]: present } },
    );
    await step.next(msg);
    log.info(`job ${id} blob ${index} at ${present}/${state.size}`);
  }

  /**
   * The blob a message is about, as the plan has it: its stored task (written from the plan by the fan-out), else
   * the plan's blob list. A message saying another digest or size than the plan is refused, whoever signed it.
   */
  private async descriptor(
    id: string,
    msg: StepOf<'blob'>,
    task: BlobTask | undefined,
  ): Promise<{ digest: Digest; size: number }> {
    const planned = task?.state ?? (await this.o.store.blobs(id))?.[msg.blob];
    if (!planned) throw new StepRefusedError('STEP_NOT_IN_PLAN', `job ${id} has no blob ${msg.blob} in its plan`);
    if (msg.digest !== planned.digest || msg.size !== planned.size) {
      throw new StepRefusedError(
        'STEP_NOT_IN_PLAN',
        `blob ${msg.blob} of job ${id} is ${planned.digest} (${planned.size} bytes) in the plan, not ${msg.digest} (${msg.size} bytes)`,
      );
    }
    return { digest: planned.digest, size: planned.size };
  }

  /**
   * Fan-in: marks the blob done. The step that completes the set (again on redelivery: finalize is idempotent)
   * finalizes the import itself while its budget lasts — no queue hop between the last blob and the tags — with a
   * finalize message standing by, visible once this step's lease is over, in case its worker dies meanwhile (it
   * finds the import ended otherwise); past its budget, it enqueues finalize. Finalizing is a few manifest PUTs
   * (the step's margin covers them); copies to further repositories stop at the budget and enqueue the rest.
   */
  private async blobDone(id: string, index: number, state: BlobState, step: StepContext, log: Logger): Promise<void> {
    const job = await this.o.store.update(id, (j) => {
      if (j.doneBlobs.includes(index)) return undefined;
      const doneBlobs = [...j.doneBlobs, index];
      // The step that completes the set finalizes at once where no blob is left to copy first (one target
      // repository) and its budget lasts: the finalizing mark goes into this same write, one read-modify-write less
      // before the tags. Cancels are refused from here on; a worker dying before the tags leaves this step to be
      // delivered again, and it finalizes then.
      const finalizing =
        j.finalizing ??
        (doneBlobs.length === j.blobsTotal &&
          j.repositories.length === 1 &&
          !ENDED.has(j.status) &&
          Date.now() < step.until);
      return {
        ...j,
        doneBlobs,
        blobBytes: { ...j.blobBytes, [index]: state.size },
        ...(finalizing ? { finalizing: true as const } : {}),
      };
    });
    if (job.doneBlobs.length !== job.blobsTotal || ENDED.has(job.status)) return;
    if (Date.now() >= step.until) {
      await step.next({ v: 1, job: id, step: 'finalize' });
      return;
    }
    await this.o.queue.send(
      { v: 1, job: id, step: 'finalize' },
      Math.ceil((step.budgetMs + this.o.leaseMarginMs) / 1000),
    );
    await this.finalize(job, step, log);
  }

  // ---- finalize --------------------------------------------------------------------------------------

  /**
   * The blobs of the first target repository were copied by the blob steps; further repositories get them by
   * mount from it (a copy where the registry refuses), then the manifests and tags are written. Out of budget
   * before that, the next finalize carries on (blobs already there are skipped by a HEAD).
   */
  private async finalize(job: JobRecord, step: StepContext, log: Logger): Promise<void> {
    const plan = await this.o.store.plan(job.id);
    if (!plan)
      throw new OciImportError('PLAN_MISSING', `job ${job.id}: finalize without a plan`, {
        temporary: true,
        side: 'storage',
      });
    const engine = this.engine(await this.o.sides(job));
    const run = await copyAllAndFinalize(engine, plan, this.context(job), {
      repositories: job.repositories.slice(1),
      blobConcurrency: 1,
      until: step.until,
      signal: step.signal,
      fresh: false,
      beforeFinalize: () => this.markFinalizing(job, log),
    });
    if (run.outcome === 'incomplete') {
      await step.next({ v: 1, job: job.id, step: 'finalize' });
      return;
    }
    if (run.outcome === 'stopped') return;
    const { result } = run;
    await this.o.store.update(job.id, (j) =>
      ENDED.has(j.status) ? undefined : { ...j, status: 'succeeded', digest: result.digest },
    );
    log.info(
      `job ${job.id} succeeded: ${result.digest} (${[...result.tagged, ...result.unchanged].join(', ') || 'by digest'})`,
    );
  }
}
